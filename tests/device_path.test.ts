/**
 * The device path (src/device.ts: what webgpu runs) exercised on the test backend (wasm) by forcing it: VAE images
 * as device row bands with GroupNorm reduced on the device, vocoder calls kept on the device and read back once, and
 * every host value fetched through a HostRead yield (src/steps.ts). The same fixtures, within their tolerances, as
 * the host path; the host path itself is unchanged (tests/vae.test.ts, tests/vocoder.test.ts, the parity suite).
 * tests/webgpu.test.ts runs the same path on the real webgpu backend (Dawn's software adapter).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { forceDevicePath } from '../src/device.js';
import { compareTensor, loadCase, toleranceFor } from '../src/fixtures.js';
import type { HostTensor } from '../src/hosttensor.js';
import { ReplayNoise } from '../src/noise.js';
import { drainSteps, drainStepsAsync, HostRead } from '../src/steps.js';
import { AutoencoderKL, type VaeConfig } from '../src/vae/autoencoder.js';
import { HifiGanGenerator, type HifiganConfig } from '../src/vocoder/hifigan.js';
import { fixtureDir } from './parity-helper.js';

beforeAll(async () => { await initBackend(); });
afterEach(() => forceDevicePath(null));

function vaeOf(c: Awaited<ReturnType<typeof loadCase>>, p: ConstructorParameters<typeof AutoencoderKL>[0]): AutoencoderKL {
  const cfg = c.json.config as unknown as VaeConfig;
  const vae = new AutoencoderKL(p, { ddconfig: cfg.ddconfig, embed_dim: cfg.embed_dim });
  vae.tile = { tileRows: 5 };
  return vae;
}

function expectWithin(c: Awaited<ReturnType<typeof loadCase>>, name: string, got: HostTensor): void {
  const r = compareTensor(name, got, c.t(name), toleranceFor(c.json, name));
  expect(r.pass, `${name}: max_abs ${r.maxAbs}, rel_l2 ${r.relL2}`).toBe(true);
}

/** how many HostRead yields a generator makes (each fulfilled synchronously here) */
function countReads<R>(gen: Generator<unknown, R, void>): { value: R; reads: number } {
  let reads = 0;
  for (;;) {
    const r = gen.next();
    if (r.done) return { value: r.value, reads };
    if (r.value instanceof HostRead) { reads++; r.value.fulfilSync(); }
  }
}

describe('device path, forced on the test backend', () => {
  it('vae.decode: device bands + device GroupNorm within the tolerance; one read per row; no tensors left', async () => {
    const c = await loadCase(fixtureDir('audio', 'vae.decode'));
    const vae = vaeOf(c, await c.weights());
    const before = tf.memory().numTensors;
    forceDevicePath(true);
    const { value: mel, reads } = countReads(vae.decodeSteps(c.t('in.z')));
    expect(reads).toBe(2); // B = 2 rows: each row's mel read once, nothing inside the decoder
    expectWithin(c, 'out.mel', mel!);
    // the async driver gives the same values
    const again = (await drainStepsAsync(vae.decodeSteps(c.t('in.z'))))!;
    expect(Array.from(again.data as Float32Array)).toEqual(Array.from(mel!.data as Float32Array));
    vae.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // without the device path no HostRead is yielded at all (the host path reads as it always did)
    forceDevicePath(false);
    const vh = vaeOf(c, await c.weights());
    expect(countReads(vh.decodeSteps(c.t('in.z'))).reads).toBe(0);
    vh.dispose();
  });

  it('vae.encode: moments read once per row, within the tolerance', async () => {
    const c = await loadCase(fixtureDir('audio', 'vae.encode'));
    const vae = vaeOf(c, await c.weights());
    forceDevicePath(true);
    const { value: r, reads } = countReads(vae.encodeSteps(c.t(c.json.inputs!.mel!), new ReplayNoise(c.noise(), 'noise')));
    expect(reads).toBe(c.t(c.json.inputs!.mel!).shape[0]);
    expectWithin(c, 'out.z', r.z);
    vae.dispose();
  });

  it('hifigan: the calls of generateMany stay on the device and are read back once', async () => {
    const c = await loadCase(fixtureDir('audio', 'hifigan.generate'));
    const cfg = c.json.config as Record<string, unknown>;
    const voc = new HifiGanGenerator(await c.weights(), (cfg.vocoder ?? cfg) as HifiganConfig);
    const mel = c.t(c.json.inputs!.mel!);
    const host = voc.generate(mel);
    voc.maxBatchBytes = voc.bytesPerFrame * 7; // several batched calls and halo tiles
    forceDevicePath(true);
    const before = tf.memory().numTensors;
    const { value: y, reads } = countReads(voc.generateSteps(mel));
    expect(reads).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    const x = host.data, d = y.data;
    let m = 0;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - d[i]!));
    expect(m).toBeLessThan(1e-5); // the same calls, tiled: equal up to float rounding
    expectWithin(c, 'out.wav', { dtype: 'float32', shape: [y.shape[0], 1, y.shape[1]], data: y.data });
    voc.dispose();
  });

  it('drainSteps fulfils a HostRead synchronously (the host path), drainStepsAsync with await data()', async () => {
    const t = tf.tensor1d([1, 2, 3]);
    function* g(): Generator<HostRead, number, void> { const r = new HostRead(t, 'test'); yield r; return r.value[2]!; }
    expect(drainSteps(g())).toBe(3);
    expect(await drainStepsAsync(g())).toBe(3);
    expect(() => new HostRead(t, 'unread').value).toThrow(/read before the driver fulfilled it/);
    t.dispose();
  });
});
