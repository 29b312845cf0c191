/**
 * The set-up the webgpu test files share: Dawn's software adapter (MUCODEC_WEBGPU_ADAPTER=software: OpenGL ES on
 * Mesa llvmpipe; .ci/run installs libegl1 libegl-mesa0 libgl1-mesa-dri) probed once per file in a child process.
 * The rule: outside CI a missing adapter skips the file's checks with the reason printed; with CI=true it is a
 * failure (the packages are installed there), thrown while the file is collected.
 */
import { it } from 'vitest';
import { runHelper, type ChildResult } from './run_child.js';

export const SOFT = { MUCODEC_WEBGPU_ADAPTER: 'software' } as const;

/** the JSON a probe printed on its `RESULT ` line; an error with the probe's stderr tail when there is none */
export function resultOf(r: ChildResult): Record<string, unknown> {
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`probe printed no result (exit ${r.status}):\n${r.stderr.slice(-3000)}`);
  return JSON.parse(line.slice(7)) as Record<string, unknown>;
}

/** probe the software adapter for `file`; `run` is `it` where it exists, `it.skip` (outside CI only) where not */
export async function softwareAdapter(file: string): Promise<{ run: typeof it | typeof it.skip; unavailable: string | null }> {
  const probe = resultOf(await runHelper('webgpu_probe.ts', ['probe'], SOFT, 180_000));
  const unavailable = probe.ok ? null : String(probe.reason);
  if (unavailable && process.env.CI === 'true') throw new Error(`${file}: Dawn's software adapter is missing under CI=true: ${unavailable}`);
  if (unavailable) console.warn(`${file}: SKIPPED, Dawn's software adapter cannot be created here: ${unavailable}`);
  return { run: unavailable ? it.skip : it, unavailable };
}
