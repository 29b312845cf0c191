/**
 * `mucodec encode <in.audio> -o <out.mcodes> [--weights DIR] [--batch N] [--quiet]`, or a folder:
 * `mucodec encode <dir> -o <dir>` (every audio file below it, src/commands/folders.ts)
 *
 * Reads an audio file (WAV, FLAC, MP3, Ogg Vorbis or Opus, by content; any rate, mono or stereo), encodes it with upstream's file2code + sound2code semantics and
 * writes a .mcodes file atomically (nothing is left under the output name if encoding fails or is interrupted).
 * Progress: one updating line per window on a TTY (stderr), periodic lines otherwise.
 */
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { withWriteSignal } from '../atomic.js';
import { openAudioSource } from '../audio/open.js';
import { MuCodec } from '../codec.js';
import { writeCodesFile } from '../codesfile.js';
import { checkKnown, optFlag, optNumber, optString, parseArgs } from './args.js';
import type { CommandContext } from './context.js';
import { watchInterrupts } from './interrupt.js';
import { isFolder, runFolder } from './folders.js';
import { checkOutputFile } from './output_check.js';
import { makeProgress } from './progress.js';
import { resolveWeightsDir } from './weights.js';

export const ENCODE_USAGE = 'usage: mucodec encode <in.audio> -o <out.mcodes> [--weights DIR] [--batch N] [--quiet]\n       mucodec encode <dir> -o <out dir> [same options]';

export async function encodeCommand(argv: string[], ctx: CommandContext = {}): Promise<number> {
  const a = parseArgs(argv, ['quiet']);
  checkKnown(a, ['output', 'weights', 'batch', 'quiet', 'verbose']);
  if (a.positionals.length !== 1) throw new Error(`encode: give exactly one input file\n${ENCODE_USAGE}`);
  const input = a.positionals[0]!;
  if (await isFolder(input)) {
    const weightsDir = resolveWeightsDir(optString(a, 'weights'), (l) => (ctx.stderr ?? process.stderr).write(`${l}\n`));
    const batchSize = optNumber(a, 'batch', (n) => Number.isInteger(n) && n >= 1, 'a positive integer') ?? 1;
    return runFolder({ kind: 'encode', input, output: optString(a, 'output'), weightsDir, quiet: optFlag(a, 'quiet'), batchSize }, ctx);
  }
  const output = optString(a, 'output') ?? `${input.slice(0, input.length - extname(input).length)}.mcodes`;
  await checkOutputFile('encode', output, [{ path: input, what: 'input' }]);
  const weightsDir = resolveWeightsDir(optString(a, 'weights'), (l) => (ctx.stderr ?? process.stderr).write(`${l}\n`));
  const batchSize = optNumber(a, 'batch', (n) => Number.isInteger(n) && n >= 1, 'a positive integer') ?? 1;
  const quiet = optFlag(a, 'quiet');
  const log = ctx.log ?? ((l: string) => console.log(l));

  // streamed: the header now (its errors before the model loads), the samples window by window during the encode
  const source = await openAudioSource(input);
  const seconds = source.frames / source.sampleRate;
  if (ctx.verbose) log(`${basename(input)}: ${source.sampleRate} Hz, ${source.channels} channel(s), ${seconds.toFixed(2)} s (${source.format})`);
  let codec: MuCodec;
  try {
    codec = await MuCodec.load({ weightsDir, backend: ctx.backend, parts: ['encoder'] });
  } catch (e) {
    await source.close();
    throw e;
  }
  const interrupts = watchInterrupts();
  const progress = makeProgress('encode', ctx.stderr ?? process.stderr, quiet);
  try {
    const r = await codec.encodeSource(source, {
      batchSize,
      signal: interrupts.signal,
      onProgress: (p) => progress.update(p.window, p.windows, `window ${p.window}/${p.windows}`),
    });
    progress.done();
    await withWriteSignal(interrupts.signal, () => writeCodesFile(output, { ...r.meta, codes: r.codes }));
    const bytes = (await stat(output)).size;
    log(`${output}: ${r.meta.frames} codes (${(r.meta.frames / r.meta.frameRate).toFixed(2)} s at ${r.meta.frameRate} Hz), ${bytes} bytes (${((bytes * 8) / seconds / 1000).toFixed(3)} kbps)`);
    return 0;
  } finally {
    progress.done(); // stops its redraw timer (also when the encode failed)
    interrupts.dispose();
    codec.dispose();
    await source.close();
  }
}
