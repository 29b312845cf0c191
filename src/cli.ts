/**
 * The `mucodec` command. Each sub-command lives in src/commands/ (or convert/ for checkpoint tools);
 * this file only dispatches and sets up the backend.
 */
import { initBackend } from './backend.js';
import { requestWasmThreads } from './workers/wasm_threads.js';
import { checkKnown, optFlag, optString, parseArgs } from './commands/args.js';

const USAGE = `mucodec — MuCodec music codec (0.35 kbps) on TensorFlow.js

usage:
  mucodec encode      <in.wav> -o <out.mcodes> [--weights DIR]   (default weights: ./weights, else the tiny test model)
  mucodec decode      <in.mcodes> -o <out.wav> [--steps 20] [--guidance 1.5] [--sampler euler] [--seed N] [--prompt p.wav] [--float]
  mucodec reconstruct <in.wav> -o <out.wav> [decode options]
  mucodec convert     --mucodec ckpt/mucodec.pt --muq muq_dev/muq.pt --audioldm tools/audioldm_48k.pth -o weights/
  mucodec inspect     <file.pt|file.safetensors|file.mcodes> [--json]
  mucodec fetch-weights [--dir weights/]   download the released checkpoints (resumable, SHA-256 checked) and convert them
  mucodec compare     <ref.wav> <test.wav> [--json] [--png out.png]   quality metrics (mel/STFT distance, SI-SDR, LSD, loudness)
  mucodec sweep       <in.wav|in.mcodes> --sampler euler,heun --steps 5,10,20 [--seed N] [--ref-steps 50] --out <dir>
  mucodec parity      <dir>...           run reference fixture cases: one PASS/FAIL line each, then "N passed, M failed"
  mucodec bench       [encode|dit|vae|vocoder] [--runs N] [--threads N] [--profile] [--no-song] [--no-cfg]   time the stages at the real size
  mucodec backend                        say which tfjs backend would be used and why

global options: --backend auto|tensorflow-gpu|tensorflow|webgpu|wasm|cpu (or MUCODEC_BACKEND), --verbose,
                --threads N|auto   wasm compute threads (or MUCODEC_THREADS; default: the number of cores; 1 = single-threaded)
`;

type Command = (argv: string[], ctx: { verbose: boolean; backend?: string }) => Promise<number>;

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
    const r = await initBackend(ctx.backend, (l) => console.log(l));
    void r;
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
  let verbose = false;
  let backend: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--verbose' || a === '-v') verbose = true;
    else if (a === '--backend') { backend = argv[++i]; if (!backend) throw new Error('option --backend needs a value'); }
    else if (a.startsWith('--backend=')) backend = a.slice('--backend='.length);
    else if (a === '--threads' || a.startsWith('--threads=')) {
      const v = a === '--threads' ? argv[++i] : a.slice('--threads='.length);
      if (!v) throw new Error('option --threads needs a value');
      requestWasmThreads(v);
      process.env.MUCODEC_THREADS = v; // child processes (bench) inherit it
    } else rest.push(a);
  }
  const [cmd, ...args] = rest;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return cmd ? 0 : 1;
  }
  await import('./commands/index.js');
  const fn = commands[cmd];
  if (!fn) {
    console.error(`mucodec: unknown command "${cmd}"\n\n${USAGE}`);
    return 1;
  }
  return fn(args, { verbose, backend });
}

export { optFlag, optString };
