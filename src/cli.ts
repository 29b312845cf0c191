/**
 * The `mucodec` command. Each sub-command lives in src/commands/ (or convert/ for checkpoint tools);
 * this file only dispatches, prints the usage (`mucodec --help`, `mucodec <command> --help`) and sets up the backend.
 */
import { initBackend } from './backend.js';
import { requestWasmThreads } from './workers/wasm_threads.js';
import { checkKnown, parseArgs } from './commands/args.js';
import type { Command, CommandContext } from './commands/context.js';

/** One usage text per command (`mucodec <command> --help`); their first lines make up `mucodec --help`. */
const COMMAND_USAGE: Record<string, string> = {
  encode: `mucodec encode      <in.audio> -o <out.mcodes> [--weights DIR] [--batch N] [--quiet]
  WAV (PCM u8/16/24/32, float 32/64), FLAC, MP3, Ogg Vorbis or Opus (told by content), mono or stereo, 8–384 kHz
  → a .mcodes file (25 codes per second); the file is read streamed (memory bounded by a window)
  --weights DIR   converted model (default: $MUCODEC_WEIGHTS, else ./weights when it holds one, else the tiny test model)
  --batch N       MuQ windows per batch (default 1)
  a folder: \`mucodec encode <dir> -o <out dir>\` encodes every audio file below it (layout mirrored; done ones skipped)`,
  decode: `mucodec decode      <in.mcodes> -o <out.wav> [--steps 20] [--guidance 1.5] [--sampler euler] [--seed N] [--prompt p.wav] [--float] [--format wav|flac]
  --steps N       ODE steps per 40.96 s window (default 20)
  --guidance G    classifier-free guidance scale (default 1.5, as upstream)
  --sampler S     euler (upstream), heun, midpoint or rk4
  --seed N        same seed → identical output (default: random)
  --prompt p.wav  in-context prompt conditioning the first window (as upstream's code2sound)
  --float         write 32-bit float WAV (default 16-bit PCM; upstream writes float)
  --format F      wav or flac (16-bit, lossless; default: by the output's extension, .flac → FLAC, else WAV)
  --precision P   the DiT's arithmetic: f32 (default) or f16-emulated (research: fp16 autocast's rounding in float32,
                  to measure its error; slower, any backend); real half-precision kernels (f16) are not available
  --weights DIR, --quiet
  a folder: \`mucodec decode <dir> -o <out dir>\` decodes every .mcodes file below it (layout mirrored; done ones skipped)`,
  reconstruct: `mucodec reconstruct <in.audio> -o <out.wav> [decode options]
  encode then decode (50 steps by default, like upstream's sound2sound); output cut to the input's duration
  a folder: \`mucodec reconstruct <dir> -o <out dir>\` every audio file below it (layout mirrored; done ones skipped)`,
  convert: `mucodec convert     --mucodec ckpt/mucodec.pt --muq muq_dev/muq.pt --audioldm tools/audioldm_48k.pth -o weights/ [--config config.json]
  convert the released PyTorch checkpoints (no Python) into encoder/decoder/vae .safetensors + config.json
  --dtype f16     half-size weights: decoder and VAE files in float16 (widened to float32 on load; README "Real weights")
  --half-encoder  with --dtype f16, the encoder file too (its codes may differ from float32 weights')
  --from DIR      rewrite a converted folder (e.g. --from weights --dtype f16 -o weights-f16) instead of checkpoints`,
  inspect: `mucodec inspect     <file.pt|file.pth|file.safetensors|file.mcodes> [--json]
  every tensor of a checkpoint (name, dtype, shape), or the validated header of a codes file`,
  'fetch-weights': `mucodec fetch-weights [--dir weights/] [--base-url URL] [--keep] [--no-convert]
  download the released checkpoints (resumable, SHA-256 checked) and convert them
  --dtype f16     convert to half-size weights (as mucodec convert --dtype f16)`,
  compare: `mucodec compare     <ref> <test> [--json] [--png out.png]
  quality metrics of a test recording against a reference (aligned as reconstruct crops): DAC multi-scale mel and
  multi-resolution STFT distances, SI-SDR, log-spectral distance, BS.1770 loudness difference
  --json          print {"metrics": {...}, ...}
  --png out.png   draw both log-mel spectrograms and their difference, with the metrics as a caption`,
  sweep: `mucodec sweep       <in.audio|in.mcodes> --sampler euler,heun,midpoint --steps 5,10,20 [--seed N] [--ref-steps 50] --out <dir>
  decode every sampler × steps combination with one seed; score each against a reference decode (Euler at
  --ref-steps) and, for a WAV input, the original; write results.json (rows), table.md and plot.png into <dir>
  (rewritten after every row: Ctrl-C keeps the finished rows)
  --guidance G (default 1.5), --weights DIR, --quiet`,
  parity: `mucodec parity      <dir>...
  run reference fixture cases: one PASS/FAIL line each, then "N passed, M failed"`,
  bench: `mucodec bench       [encode|dit|vae|vocoder] [--runs N] [--threads N] [--profile] [--no-song] [--no-cfg]
  time the stages at the real size (from a clone of the repository)`,
  backend: `mucodec backend
  say which tfjs backend would be used and why the others were skipped`,
};

const GLOBAL_OPTIONS = `global options: --backend auto|tensorflow-gpu|tensorflow|webgpu|wasm|cpu (or MUCODEC_BACKEND), --verbose,
                --threads N|auto   wasm compute threads (or MUCODEC_THREADS; default: the number of cores; 1 = single-threaded)`;

const USAGE = `mucodec — MuCodec music codec (0.35 kbps) on TensorFlow.js

usage:
${Object.values(COMMAND_USAGE).map((u) => `  ${u.split('\n')[0]}`).join('\n')}

\`mucodec <command> --help\` for a command's options.
${GLOBAL_OPTIONS}
`;

const commands: Record<string, Command> = {
  async parity(argv, ctx) {
    const a = parseArgs(argv);
    checkKnown(a, []);
    if (!a.positionals.length) throw new Error('parity: give at least one folder of fixture cases');
    await initBackend(ctx.backend, ctx.verbose ? (l) => console.error(l) : undefined);
    await import('./stages/index.js');
    const { runParity } = await import('./parity.js');
    const r = await runParity(a.positionals);
    return r.failed ? 1 : 0;
  },
  async backend(argv, ctx) {
    checkKnown(parseArgs(argv), []);
    await initBackend(ctx.backend, (l) => console.log(l));
    return 0;
  },
};

/** Extra commands registered by other modules (keeps this file free of heavy imports). */
export function registerCommand(name: string, fn: Command): void {
  commands[name] = fn;
}

export async function main(argv: string[]): Promise<number> {
  // global options may appear anywhere
  const rest: string[] = [];
  const ctx: CommandContext = { verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--verbose' || a === '-v') ctx.verbose = true;
    else if (a === '--backend') { ctx.backend = argv[++i]; if (!ctx.backend) throw new Error('option --backend needs a value'); }
    else if (a.startsWith('--backend=')) ctx.backend = a.slice('--backend='.length);
    else if (a === '--threads' || a.startsWith('--threads=')) {
      const v = a === '--threads' ? argv[++i] : a.slice('--threads='.length);
      if (!v) throw new Error('option --threads needs a value');
      requestWasmThreads(v);
      process.env.MUCODEC_THREADS = v; // child processes (bench) inherit it
    } else rest.push(a);
  }
  const [cmd, ...args] = rest;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    const topic = cmd === 'help' ? args[0] : undefined;
    if (topic && COMMAND_USAGE[topic]) console.log(`usage: ${COMMAND_USAGE[topic]}\n\n${GLOBAL_OPTIONS}`);
    else console.log(USAGE);
    return cmd ? 0 : 1;
  }
  const dashdash = args.indexOf('--');
  if ((dashdash < 0 ? args : args.slice(0, dashdash)).some((x) => x === '--help' || x === '-h') && COMMAND_USAGE[cmd]) {
    console.log(`usage: ${COMMAND_USAGE[cmd]}\n\n${GLOBAL_OPTIONS}`);
    return 0;
  }
  await import('./commands/index.js');
  const fn = commands[cmd];
  if (!fn) {
    console.error(`mucodec: unknown command "${cmd}"\n\n${USAGE}`);
    return 1;
  }
  return fn(args, ctx);
}
