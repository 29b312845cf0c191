/** Importing this module registers the heavier sub-commands with the CLI dispatcher. */
import { registerCommand } from '../cli.js';
import { convertCommand, inspectCommand } from '../../convert/cli-commands.js';
import { fetchWeightsCommand } from './fetch_weights.js';

registerCommand('inspect', (argv) => inspectCommand(argv));
registerCommand('convert', (argv) => convertCommand(argv));
registerCommand('fetch-weights', (argv) => fetchWeightsCommand(argv));
import { encodeCommand } from './encode.js';

registerCommand('encode', (argv, ctx) => encodeCommand(argv, ctx));
import { decodeCommand, reconstructCommand } from './decode.js';

registerCommand('decode', (argv, ctx) => decodeCommand(argv, ctx));
registerCommand('reconstruct', (argv, ctx) => reconstructCommand(argv, ctx));
import { benchCommand } from './bench.js';

registerCommand('bench', (argv) => benchCommand(argv));
import { compareCommand } from './compare.js';

registerCommand('compare', (argv) => compareCommand(argv));
import { sweepCommand } from './sweep.js';

registerCommand('sweep', (argv, ctx) => sweepCommand(argv, ctx));
