/** Importing this module registers the heavier sub-commands with the CLI dispatcher. */
import { registerCommand } from '../cli.js';
import { convertCommand, inspectCommand } from '../../convert/cli-commands.js';
import { benchCommand } from './bench.js';
import { decodeCommand, reconstructCommand } from './decode.js';
import { encodeCommand } from './encode.js';
import { fetchWeightsCommand } from './fetch_weights.js';

registerCommand('encode', encodeCommand);
registerCommand('decode', decodeCommand);
registerCommand('reconstruct', reconstructCommand);
registerCommand('inspect', inspectCommand);
registerCommand('convert', convertCommand);
registerCommand('fetch-weights', (argv) => fetchWeightsCommand(argv));
registerCommand('bench', (argv) => benchCommand(argv));
import { compareCommand } from './compare.js';

registerCommand('compare', (argv) => compareCommand(argv));
import { sweepCommand } from './sweep.js';

registerCommand('sweep', (argv, ctx) => sweepCommand(argv, ctx));
