/**
 * `mucodec decode <in.mcodes> -o <out.wav>` and `mucodec reconstruct <in.audio> -o <out.wav>`, with
 * [--steps N] [--guidance G] [--sampler euler|heun|midpoint|rk4] [--seed N] [--prompt p.wav] [--float]
 * [--format wav|flac] [--precision f32|f16-emulated] [--weights DIR] [--quiet] (a folder input goes to src/commands/folders.ts). Progress bar
 * with ETA on a TTY, quiet lines otherwise; the output is written atomically (temp file + rename): nothing is left under the output name on error, Ctrl-C, SIGTERM or SIGHUP.
 * `decode` streams: each final chunk of the decode is appended to the temporary file as it comes out.
 */
import { basename, extname } from 'node:path';
import { withWriteSignal } from '../atomic.js';
import { readAudio } from '../audio/open.js';
import { describeFormat, extensionFor, outputFormat, openAudioSink, writeAudioFile } from '../audio/audio_out.js';
import type { Audio } from '../audio/wav.js';
import { MuCodec, type DecodeOptions, type DecodeProgress } from '../codec.js';
import { readCodesFile } from '../codesfile.js';
import { planCode2Sound } from '../decoder.js';
import { OUTPUT_SAMPLE_RATE } from '../decode_stream.js';
import { prepareStereo48k } from '../encoder.js';
import { solverNames } from '../sampler/index.js';
import { ditPrecision, parseDitPrecision, setDitPrecision } from '../dit/precision.js';
import { checkKnown, optFlag, optNumber, optString, parseArgs, type ParsedArgs } from './args.js';
import type { CommandContext } from './context.js';
import { watchInterrupts } from './interrupt.js';
import { isFolder, runFolder } from './folders.js';
import { checkOutputFile, type InputFile } from './output_check.js';
import { makeProgress } from './progress.js';
import { resolveWeightsDir } from './weights.js';

const DECODE_OPTS = ['output', 'steps', 'guidance', 'sampler', 'seed', 'prompt', 'float', 'format', 'precision', 'weights', 'quiet', 'verbose'];

/** The prompt WAV, read and checked now (errors name the prompt file, not a later "encode:" step), as 48 kHz stereo. */
async function readPrompt(path: string): Promise<Audio> {
  const wav = await readAudio(path);
  try {
    return { sampleRate: 48000, channels: prepareStereo48k(wav) };
  } catch (e) {
    throw new Error(`prompt ${path}: ${(e as Error).message.replace(/^encode: /, '')}`);
  }
}

function decodeOptions(a: ParsedArgs, defaultSteps: number): DecodeOptions {
  const sampler = optString(a, 'sampler') ?? 'euler';
  const known = solverNames();
  if (!known.includes(sampler)) throw new Error(`option --sampler: unknown sampler "${sampler}" (choose one of: ${known.join(', ')})`);
  return {
    steps: optNumber(a, 'steps', (n) => Number.isInteger(n) && n >= 1 && n <= 1000, 'an integer from 1 to 1000') ?? defaultSteps,
    guidanceScale: optNumber(a, 'guidance', (n) => n >= 0, 'a number ≥ 0') ?? 1.5,
    sampler,
    seed: optNumber(a, 'seed', (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer'),
  };
}

function progressLabel(p: DecodeProgress): string {
  const w = `window ${p.window + 1}/${p.windows}`;
  if (p.phase === 'sample') return `${w} step ${p.step}/${p.steps}`;
  if (p.phase === 'audio') return `${w} VAE + vocoder`;
  return 'prompt';
}

async function run(
  kind: 'decode' | 'reconstruct', argv: string[], ctx: CommandContext,
): Promise<number> {
  const a = parseArgs(argv, ['float', 'quiet']);
  checkKnown(a, DECODE_OPTS);
  const usage = kind === 'decode'
    ? 'usage: mucodec decode <in.mcodes> -o <out.wav> [--steps 20] [--guidance 1.5] [--sampler euler] [--seed N] [--prompt p.wav] [--float] [--format wav|flac]'
    : 'usage: mucodec reconstruct <in.audio> -o <out.wav> [--steps 50] [--guidance 1.5] [--sampler euler] [--seed N] [--prompt p.wav] [--float] [--format wav|flac]';
  if (a.positionals.length !== 1) throw new Error(`${kind}: give exactly one input file\n${usage}`);
  const input = a.positionals[0]!;
  const log = ctx.log ?? ((l: string) => console.log(l));
  const stderr = ctx.stderr ?? process.stderr;
  const opts = decodeOptions(a, kind === 'decode' ? 20 : 50);
  const precision = parseDitPrecision(optString(a, 'precision') ?? 'f32', '--precision');
  const promptPath = optString(a, 'prompt');
  const formatOpts = { float: optFlag(a, 'float'), format: optString(a, 'format') };
  if (await isFolder(input)) {
    const format = outputFormat(kind, undefined, formatOpts);
    if (promptPath) opts.prompt = await readPrompt(promptPath);
    const weightsDir = resolveWeightsDir(optString(a, 'weights'), (l) => stderr.write(`${l}\n`));
    const precisionBefore = ditPrecision();
    setDitPrecision(precision);
    try {
      return await runFolder({ kind, input, output: optString(a, 'output'), weightsDir, quiet: optFlag(a, 'quiet'), decode: opts, format }, ctx);
    } finally {
      setDitPrecision(precisionBefore);
    }
  }
  const output = optString(a, 'output') ?? `${input.slice(0, input.length - extname(input).length)}.decoded${extensionFor(outputFormat(kind, undefined, formatOpts))}`;
  const format = outputFormat(kind, output, formatOpts);
  const inputs: InputFile[] = [{ path: input, what: 'input' }];
  if (promptPath) inputs.push({ path: promptPath, what: 'prompt' });
  await checkOutputFile(kind, output, inputs);
  // read (and validate) the inputs before loading any weights
  if (promptPath) opts.prompt = await readPrompt(promptPath);
  const codesFile = kind === 'decode' ? await readCodesFile(input) : null;
  const audioIn = kind === 'reconstruct' ? await readAudio(input) : null;
  const weightsDir = resolveWeightsDir(optString(a, 'weights'), (l) => stderr.write(`${l}\n`));
  const codec = await MuCodec.load({ weightsDir, backend: ctx.backend });
  if (codesFile) {
    try {
      codec.checkCodesMeta(codesFile, input); // frame rate, codebook, MuQ layer: what the model can decode
    } catch (e) {
      codec.dispose();
      throw e;
    }
  }
  const interrupts = watchInterrupts();
  const signal = interrupts.signal;
  const quiet = optFlag(a, 'quiet');
  const bar = makeProgress(kind, stderr, quiet);
  const encBar = makeProgress('encode', stderr, quiet);
  const precisionBefore = ditPrecision();
  setDitPrecision(precision); // process-wide (src/dit/precision.ts); restored below for in-process callers
  try {
    const onProgress = (p: DecodeProgress): void => bar.update(Math.round(p.fraction * 1000), 1000, progressLabel(p));
    let frames: number;
    if (codesFile) {
      // streamed: each final chunk goes to the temporary file as it comes (memory constant in the song's length);
      // the header is completed and the file renamed at the end, or the file removed on any error or signal
      const codes = codesFile.codes;
      frames = await withWriteSignal(signal, async () => {
        const sink = await openAudioSink(output, format, { sampleRate: OUTPUT_SAMPLE_RATE, channels: 2, frames: planCode2Sound(codes.length).targetLen });
        try {
          for await (const chunk of codec.decodeStream(codes, { ...opts, signal, onProgress })) await sink.write(chunk.channels);
          bar.done();
          if (signal.aborted) throw signal.reason as Error;
          await sink.finish();
        } catch (e) {
          await sink.abort();
          throw e;
        }
        return sink.frames;
      });
    } else {
      const out = await codec.reconstruct(audioIn!, {
        ...opts, signal, onProgress,
        onEncodeProgress: (p) => { encBar.update(p.window, p.windows, `window ${p.window}/${p.windows}`); if (p.window === p.windows) encBar.done(); },
      });
      bar.done();
      if (signal.aborted) throw signal.reason as Error;
      await withWriteSignal(signal, () => writeAudioFile(output, out, format));
      frames = out.channels[0]!.length;
    }
    const secs = frames / OUTPUT_SAMPLE_RATE;
    log(`${output}: ${OUTPUT_SAMPLE_RATE} Hz, 2 channels, ${secs.toFixed(2)} s, ${describeFormat(format)}` +
      (ctx.verbose ? ` (from ${basename(input)}, ${opts.steps} ${opts.sampler} steps, guidance ${opts.guidanceScale}${precision === 'f32' ? '' : `, DiT ${precision}`})` : ''));
    return 0;
  } finally {
    setDitPrecision(precisionBefore);
    encBar.done(); bar.done(); // stop their redraw timers (also when the decode failed)
    interrupts.dispose();
    codec.dispose();
  }
}

export const decodeCommand = (argv: string[], ctx: CommandContext = {}): Promise<number> => run('decode', argv, ctx);
export const reconstructCommand = (argv: string[], ctx: CommandContext = {}): Promise<number> => run('reconstruct', argv, ctx);
