import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadCase } from '../src/fixtures.js';
import { toFloat32, toInt32 } from '../src/hosttensor.js';
import { RVQ, type RVQConfig } from '../src/rvq/index.js';
import { defineParityTests, fixtureDir } from './parity-helper.js';

defineParityTests('encoder', { only: ['rvq.quantize_tiny', 'rvq.quantize_real', 'rvq.from_codes_tiny', 'rvq.from_codes_real'] });

describe('RVQ API', () => {
  beforeAll(async () => { await initBackend(); });

  it('codes of quantize feed fromCodes; encode-only and decode-only loading; no leaks', async () => {
    const c = await loadCase(fixtureDir('encoder', 'rvq.quantize_tiny'));
    const cfg = c.json.config as unknown as RVQConfig;
    const p = await c.weights();
    const before = tf.memory().numTensors;
    const enc = RVQ.fromParams(p, cfg, 'encode');
    const dec = RVQ.fromParams(p, cfg, 'decode');
    const both = RVQ.fromParams(p, cfg);
    expect([enc.canEncode, enc.canDecode, dec.canEncode, dec.canDecode, both.canDecode]).toEqual([true, false, false, true, true]);
    const zIn = c.t('in.z');
    const z = tf.tensor3d(toFloat32(zIn), zIn.shape as [number, number, number]);
    const r = enc.quantize(z);
    expect(r.zQ).toBeNull();
    const codes = (await r.codes.data()) as Int32Array;
    expect(Array.from(codes)).toEqual(Array.from(toInt32(c.t('out.codes'))));
    // channels-last entry point gives the same codes
    const zt = tf.transpose(z, [0, 2, 1]) as tf.Tensor3D;
    expect(Array.from(await enc.codesChannelsLast(zt))).toEqual(Array.from(codes));
    // z_q of the forward equals out_proj(codebook[code]) up to rounding
    const fc = dec.fromCodes(r.codes);
    const full = both.quantize(z);
    const a = await fc.zQ.data(), b = await full.zQ!.data();
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
    expect(m).toBeLessThan(1e-5);
    expect(() => dec.quantize(z)).toThrow(/decoding only/);
    expect(() => enc.fromCodes(r.codes)).toThrow(/encoding only/);
    expect(() => dec.fromCodes({ data: new Int32Array([0, 96]), shape: [1, 1, 2] })).toThrow(/outside \[0, 96\)/);
    for (const t of [z, zt, r.codes, r.latents, fc.zQ, fc.zP, full.codes, full.latents, full.zQ!]) t.dispose();
    enc.dispose(); dec.dispose(); both.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
