/** `mucodec bench [encode|dit|vae|vocoder ...] [--runs N] [--threads N] [--profile]`: runs the benchmark harness
 *  (dist/bench/run.js, the same as `npm run bench`) in a child process with a large JS heap. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export async function benchCommand(argv: string[]): Promise<number> {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'run.js');
  if (!existsSync(script)) {
    throw new Error(`bench: ${script} is missing: the benchmarks run from a clone of the repository (\`npm ci\` builds them), the installed package does not include them`);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-old-space-size=16384', script, ...argv], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}
