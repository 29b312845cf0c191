/**
 * Half-size weights (issue 14, item 6) on the tiny model: `mucodec convert --from weights/tiny --dtype f16` halves
 * the decoder and VAE files (≤ 60 % of the float32 bytes), keeps the encoder file's bytes (so the codes), loads
 * (float16 widened to float32) and decodes close to the float32 weights' output; the per-tensor float32 rule.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertCommand } from '../convert/cli-commands.js';
import { keepFloat32Reason } from '../convert/half_weights.js';
import { readSafetensors } from '../convert/safetensors.js';
import { MuCodec } from '../src/codec.js';
import { fetchWeightsCommand } from '../src/commands/fetch_weights.js';
import { siSdr } from '../src/metrics/sisdr.js';
import { TINY, allFinite, useTinyCodec } from './helpers/tiny_codec.js';

const env = useTinyCodec();
const tmp = mkdtempSync(join(tmpdir(), 'mucodec-f16-'));
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('half-size weights', () => {
  const out = join(tmp, 'tiny-f16');

  it('a converted folder rewritten as f16: decoder and VAE ≤ 60 % of the bytes, encoder unchanged, values rounded', async () => {
    const lines: string[] = [];
    expect(await convertCommand(['--from', TINY, '--dtype', 'f16', '-o', out], { log: (l) => lines.push(l) })).toBe(0);
    const size = (d: string, f: string): number => statSync(join(d, f)).size;
    for (const f of ['decoder.safetensors', 'vae.safetensors']) {
      expect(size(out, f), f).toBeLessThanOrEqual(0.6 * size(TINY, f));
    }
    expect(readFileSync(join(out, 'encoder.safetensors')).equals(readFileSync(join(TINY, 'encoder.safetensors')))).toBe(true);
    const dec = await readSafetensors(join(out, 'decoder.safetensors'));
    expect(dec.get('cfm_wrapper.estimator.proj_out.weight')?.dtype).toBe('float16');
    expect(dec.get('normfeat.sum_x2')?.dtype).toBe('float32');
    expect(lines.at(-1)).toMatch(/config\.json written \(float16, \d+ tensors kept float32\)/);
  });

  it('the f16 folder loads and decodes: finite, the same length, close to the f32 weights (same seed)', async () => {
    const before = tf.memory().numTensors;
    const codes = Int32Array.from({ length: 150 }, (_, i) => (i * 5) % 64);
    const c = await MuCodec.load({ weightsDir: out });
    const a = await c.decode(codes, { steps: 2, seed: 4 });
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const b = await env.codec.decode(codes, { steps: 2, seed: 4 });
    expect(a.channels[0]!.length).toBe(b.channels[0]!.length);
    expect(allFinite(a.channels)).toBe(true);
    let d2 = 0, r2 = 0;
    for (let r = 0; r < 2; r++) for (let i = 0; i < b.channels[r]!.length; i++) { const d = a.channels[r]![i]! - b.channels[r]![i]!; d2 += d * d; r2 += b.channels[r]![i]! ** 2; }
    const relL2 = Math.sqrt(d2 / r2);
    const sdr = siSdr(b.channels, a.channels);
    console.log(`tiny model, f16 vs f32 weights: rel_l2 ${relL2.toExponential(2)}, SI-SDR ${sdr.toFixed(1)} dB`);
    // weights rounded by ≤ 2^−11 relative: the output moves by a small fraction of itself, it does not break
    expect(relL2).toBeGreaterThan(0);
    expect(relL2).toBeLessThan(0.05);
  });

  it('which tensors stay float32: out of half range, normfeat statistics, scalars, the resampling kernel', () => {
    const v = (x: number): Float32Array => Float32Array.from([0.5, x]);
    expect(keepFloat32Reason('a.weight', [2], v(65519))).toBeNull(); // rounds to 65504
    expect(keepFloat32Reason('a.weight', [2], v(-65520))).toMatch(/beyond half precision/); // would round to -Infinity
    expect(keepFloat32Reason('a.weight', [2], v(Infinity))).toBeNull(); // already infinite: kept as it is in f16 too
    expect(keepFloat32Reason('normfeat.sum_x', [2], v(1))).toMatch(/normfeat/);
    expect(keepFloat32Reason('scale_factor', [], Float32Array.of(0.5))).toBe('a scalar');
    expect(keepFloat32Reason('rsq48tomuencoder.kernel', [1, 1, 2], v(0.1))).toMatch(/resampling kernel/);
  });

  it('fetch-weights --dtype: an unknown dtype is refused before any download', async () => {
    await expect(fetchWeightsCommand(['--dir', join(tmp, 'fw'), '--dtype', 'f8', '--base-url', 'http://127.0.0.1:9/'])).rejects.toThrow('option --dtype: "f8" is not a weights dtype (f32 or f16)');
    expect(existsSync(join(tmp, 'fw'))).toBe(false);
  });
});
