/**
 * Device-resident execution on the webgpu backend (Dawn's software adapter, MUCODEC_WEBGPU_ADAPTER=software; see
 * tests/webgpu.test.ts for the set-up and when it is skipped). Each check runs in a child process.
 *  - GPU memory does not grow with the number of windows: the tiny model's decode stages over 3 short windows
 *    (inference_codes with CFG, VAE decoder, vocoder, cross-fade), the backend's buffer bytes after each window;
 *  - the splits planned from a lowered binding limit (MUCODEC_MAX_BINDING_BYTES): parity cases whose tensors exceed it
 *    unsplit pass within their tolerances with every binding under it (the guard refuses any that is not);
 *  - batched decode: the batched DiT windows of two sequences equal code2soundLatents of each alone.
 */
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { runHelper } from './helpers/run_child.js';
import { resultOf, SOFT, softwareAdapter } from './helpers/software_adapter.js';

const ROOT = join(import.meta.dirname, '..');
const { run } = await softwareAdapter('tests/webgpu_resident.test.ts');

interface Pool { usedBytes: number; allocatedBytes: number; freeBuffers: number }

describe('device-resident execution on webgpu (software adapter)', () => {
  run('GPU memory does not grow with the number of windows (the buffer pool is emptied between windows)', async () => {
    const r = resultOf(await runHelper('resident_probe.ts', ['pool', '3'], SOFT, 900_000));
    const w = r.perWindow as Pool[];
    console.log(`webgpu buffers after each window: ${w.map((p) => `${(p.allocatedBytes / 2 ** 20).toFixed(2)} MiB allocated (${(p.usedBytes / 2 ** 20).toFixed(2)} used)`).join(', ')}; ` +
      `peak inside a window ${(Number(r.peak) / 2 ** 20).toFixed(2)} MiB`);
    expect(w.length).toBe(3);
    for (const p of w) {
      expect(p.freeBuffers).toBe(0); // nothing pooled is carried into the next window
      expect(p.allocatedBytes).toBe(p.usedBytes);
      expect(p.allocatedBytes).toBeLessThanOrEqual(w[0]!.allocatedBytes); // resident weights only: no growth
    }
    expect(Number(r.peak)).toBeGreaterThan(w[0]!.allocatedBytes); // the window's temporaries existed and were freed
    expect(r.syncReads).toBe(0);
  }, 960_000);

  run('splits planned from a lowered binding limit: every binding under it, the fixtures within tolerance', async () => {
    const cases = (l: string[]) => l.map((c) => join(ROOT, 'tests', 'fixtures', c));
    // 2 MiB: the DiT's 1040-token attention scores (4.3 MB per head) and the VAE's images (its 2 intermediates) exceed it
    // unsplit, the vocoder's calls are planned under it, MuQ runs under it; 16 MiB: inference_codes' 2560-token
    // scores (26 MB per head)
    for (const [limit, list] of [
      [2 * 2 ** 20, ['decoder/dit.transformer', 'audio/vae.decode', 'audio/hifigan.generate', 'encoder/muq.encoder']],
      [16 * 2 ** 20, ['decoder/mucodec.inference_codes']],
    ] as const) {
      const r = await runHelper('cli_src.ts', ['--backend', 'webgpu', 'parity', ...cases([...list])], { ...SOFT, MUCODEC_MAX_BINDING_BYTES: String(limit) }, 900_000);
      const lines = r.stdout.split('\n').filter((l) => /^(PASS|FAIL) /.test(l));
      console.log(`limit ${limit / 2 ** 20} MiB:\n${lines.join('\n')}`);
      expect(lines.length, r.stdout + r.stderr.slice(-3000)).toBe(list.length);
      expect(lines.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    }
  }, 1_900_000);

  run('batched decode: the batched DiT windows of two sequences equal each sequence alone', async () => {
    const r = resultOf(await runHelper('resident_probe.ts', ['batch'], SOFT, 900_000));
    console.log(`batched vs alone on webgpu: ${JSON.stringify(r.diffs)}`);
    expect(r.windows).toEqual([1, 1]);
    for (const d of (r.diffs as number[][]).flat()) expect(d).toBeLessThanOrEqual(1e-5);
    expect(r.syncReads).toBe(0);
  }, 960_000);
});
