/**
 * DiT (Transformer2DModel) unit tests beyond the parity cases: position-embedding layout, intermediates,
 * weight residency modes and their tensor hygiene, batch with per-item t, the real configuration's size.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { loadCase, type FixtureCase } from '../src/fixtures.js';
import { toFloat32, type HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
import { REAL_DIT_CONFIG, ditConfigFromUpstream, flowTimestepSinusoid, get2dSincosPosEmbed, Transformer2DModel } from '../src/dit/index.js';
import { fixtureDir } from './parity-helper.js';

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0, d = 0;
  for (let i = 0; i < a.length; i++) { n += (a[i]! - b[i]!) ** 2; d += b[i]! ** 2; }
  return Math.sqrt(n / d);
}

describe('dit', () => {
  let c: FixtureCase;
  let params: Params;
  const tensor = (name: string): tf.Tensor => { const h = c.t(name); return tf.tensor(toFloat32(h), h.shape); };

  beforeAll(async () => {
    await initBackend();
    c = await loadCase(fixtureDir('decoder', 'dit.transformer'));
    params = await c.weights();
  });

  it('2-D sin-cos position embedding: layout and values of mid.pos_embed_used (T/2 = 32 and odd 65 rows)', () => {
    for (const T of [64, 130]) {
      const ref = toFloat32(c.t(`mid.pos_embed_used_T${T}`));
      const ours = get2dSincosPosEmbed(48, T / 2, 16, 192, 6);
      // the reference is patch_embed − conv in float32 (tokens up to ~8): rounding ~1e-6
      expect(maxAbs(ours, ref)).toBeLessThan(4e-6);
    }
    // first half encodes the column: tokens of one row differ only there
    const pe = get2dSincosPosEmbed(48, 4, 16, 192, 6);
    expect(Array.from(pe.subarray(24, 48))).toEqual(Array.from(pe.subarray(48 + 24, 96)));
  });

  it('flow timestep sinusoid: cos first, t scaled by 1000 inside', () => {
    const e = flowTimestepSinusoid([0, 0.001], 512);
    expect(e.length).toBe(1024);
    expect(Array.from(e.subarray(0, 256)).every((v) => v === 1)).toBe(true);
    expect(Array.from(e.subarray(256, 512)).every((v) => v === 0)).toBe(true);
    expect(e[512]).toBeCloseTo(Math.cos(1), 6); // t·freq_0·1000 = 1
    expect(e[512 + 256]).toBeCloseTo(Math.sin(1), 6);
  });

  it('forward intermediates match mid.* (patch embed, adaLN-single, every block)', () => {
    const cfg = ditConfigFromUpstream(c.json.config as Record<string, unknown>);
    const model = new Transformer2DModel(params, cfg);
    const x = tensor('in.hidden_states_T64') as tf.Tensor4D;
    const seen: Record<string, number> = {};
    const y = model.forward(x, toFloat32(c.t('in.timestep_T64')), (name, t) => {
      const ref = c.tensors.get(`mid.${name}_T64`);
      if (ref) seen[name] = relL2(t.dataSync(), toFloat32(ref));
    });
    expect(Object.keys(seen).sort()).toEqual(['block0', 'block1', 'block2', 'patch_embed', 't_embedded', 't_mod']);
    for (const [k, e] of Object.entries(seen)) expect(e, k).toBeLessThan(1e-5);
    x.dispose(); y.dispose(); model.dispose();
  });

  it('per-block and resident weights give identical outputs; no tensor survives dispose', () => {
    const cfg = ditConfigFromUpstream(c.json.config as Record<string, unknown>);
    const start = tf.memory().numTensors;
    const x = tensor('in.hidden_states_T64') as tf.Tensor4D;
    const t = toFloat32(c.t('in.timestep_T64'));
    const outs: Float32Array[] = [];
    for (const residency of ['resident', 'per-block'] as const) {
      const m = new Transformer2DModel(params, cfg, { residency });
      expect(m.residency).toBe(residency);
      const counts: number[] = [];
      for (let i = 0; i < 2; i++) {
        const y = m.forward(x, t);
        outs.push(y.dataSync() as Float32Array);
        y.dispose();
        counts.push(tf.memory().numTensors);
      }
      expect(counts[1]).toBe(counts[0]); // nothing accumulates per forward
      m.dispose();
    }
    expect(maxAbs(outs[0]!, outs[2]!)).toBe(0);
    expect(maxAbs(outs[0]!, outs[1]!)).toBe(0);
    expect(maxAbs(outs[0]!, toFloat32(c.t('out.sample_T64')))).toBeLessThan(2e-4);
    x.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('batch of 2 with one t per item equals the single-item forwards (upstream only runs B = 1)', () => {
    const cfg = ditConfigFromUpstream(c.json.config as Record<string, unknown>);
    const m = new Transformer2DModel(params, cfg);
    const a = tensor('in.hidden_states_T64') as tf.Tensor4D;
    const b = tf.tidy(() => tf.reverse(a, 2) as tf.Tensor4D);
    const both = tf.concat([a, b], 0) as tf.Tensor4D;
    const y2 = m.forward(both, [0.25, 0.8]);
    const ya = m.forward(a, 0.25), yb = m.forward(b, [0.8]);
    const d2 = y2.dataSync(), da = ya.dataSync(), db = yb.dataSync();
    expect(relL2(d2.subarray(0, da.length), da)).toBeLessThan(1e-6);
    expect(relL2(d2.subarray(da.length), db)).toBeLessThan(1e-6);
    expect(() => m.forward(both, [0.1, 0.2, 0.3])).toThrow(/3 timesteps for batch 2/);
    for (const t of [a, b, both, y2, ya, yb]) t.dispose();
    m.dispose();
  });

  it('the real configuration: 742,381,328 parameters, every tensor shape as in the released checkpoint manifest', () => {
    expect(Transformer2DModel.paramCount(REAL_DIT_CONFIG)).toBe(742_381_328);
    const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'convert', 'manifests', 'decoder.json'), 'utf8')) as {
      tensors: Array<{ name: string; shape: number[] }>; param_count_estimator: number;
    };
    const map = new Map<string, HostTensor>();
    let n = 0;
    for (const t of manifest.tensors) {
      map.set(t.name, { dtype: 'float32', shape: t.shape, data: new Float32Array(0) }); // shapes only
      if (t.name.startsWith('cfm_wrapper.estimator.')) n += t.shape.reduce((a, b) => a * b, 1);
    }
    expect(n).toBe(manifest.param_count_estimator);
    expect(Transformer2DModel.paramCount(REAL_DIT_CONFIG)).toBe(n);
    const m = new Transformer2DModel(new Params(map).sub('cfm_wrapper.estimator.'), REAL_DIT_CONFIG, { residency: 'per-block' });
    expect(m.blocks.length).toBe(24);
    expect(m.patchEmbed.interpolationScale).toBe(6);
    expect(m.patchEmbed.baseSize).toBe(192);
  });
});
