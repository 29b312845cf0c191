/**
 * Runs a TypeScript helper (tests/helpers/*.ts) in a child Node process through vite-node, WITHOUT blocking the
 * test worker's event loop: vitest's worker talks to the main process over an RPC channel whose calls time out
 * after 60 s, and a `spawnSync` that outlives that (the 2-thread parity run takes 85 s on a loaded 2-core CI
 * machine) makes vitest report "Timeout calling onTaskUpdate" as an unhandled error and fail the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

export interface ChildResult { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export interface RunningChild { child: ChildProcess; result: Promise<ChildResult>; stderrSoFar(): string }

/** Start a helper; `result` settles when it exits (killed with SIGKILL after `timeoutMs`). */
export function startHelper(script: string, args: string[], env: Record<string, string>, timeoutMs: number): RunningChild {
  const argv = [join(ROOT, 'node_modules', 'vite-node', 'vite-node.mjs'), join(ROOT, 'tests', 'helpers', script), ...(args.length ? ['--', ...args] : [])];
  return startProcess(process.execPath, argv, { cwd: ROOT, env: { ...process.env, ...env } }, timeoutMs);
}

/** Start any program (`npm`, the installed `mucodec`), same handling as startHelper. */
export function startProcess(file: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }, timeoutMs: number): RunningChild {
  const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const result = new Promise<ChildResult>((resolve, reject) => {
    const timer = setTimeout(() => { stderr += `\n[run_child] killed after ${timeoutMs} ms`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (status, signal) => { clearTimeout(timer); resolve({ status, signal, stdout, stderr }); });
  });
  return { child, result, stderrSoFar: () => stderr };
}

export function runProcess(file: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }, timeoutMs: number): Promise<ChildResult> {
  return startProcess(file, args, opts, timeoutMs).result;
}

export function runHelper(script: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<ChildResult> {
  return startHelper(script, args, env, timeoutMs).result;
}
