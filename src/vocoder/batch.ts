/**
 * The vocoder's batched calls (HifiGanGenerator.generateMany): independent inputs grouped by length into batches of
 * at most `batchFrames` frames, inputs longer than a call may hold split into halo tiles (exact: the receptive field is
 * ±receptiveFrames()), each output sample placed where it belongs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { devicePath } from '../device.js';
import { HostRead, type Step } from '../steps.js';
import type { HifiGanGenerator, MelInput } from './hifigan.js';

/**
 * HifiGanGenerator.generateMany as a step generator (a yield after every ResBlock of every call). Host inputs (the host path): each
 * call's output is read as soon as it is made. Device inputs (the device path, src/device.ts): the calls' outputs
 * stay on the device and are read back together, once, after the last call (a HostRead for the step driver).
 */
export function* generateManySteps(gen: HifiGanGenerator, inputs: MelInput[]): Generator<Step, Float32Array[], void> {
  const nm = gen.cfg.num_mels, hop = gen.hop, H = gen.haloFrames;
  const budget = gen.batchFrames;
  const results = inputs.map((x) => new Float32Array(gen.outLength(x.frames)));
  // pieces: what one batch row computes (frames [a, b) of input `src`), and where its kept samples go
  interface Piece { src: MelInput; a: number; b: number; frames: number; dst: Float32Array; from: number; to: number; at: number }
  const pieces: Piece[] = [];
  inputs.forEach((x, i) => {
    const F = x.frames;
    const have = 'data' in x ? x.data.length : x.tensor.size;
    if (have !== F * nm) throw new Error(`hifigan: input ${i} has ${have} values, expected ${F} × ${nm}`);
    const outLen = results[i]!.length;
    const T = gen.tileFrames ?? (F > budget ? Math.max(H, budget - 2 * H) : 0);
    if (!T || F <= T) { pieces.push({ src: x, a: 0, b: F, frames: F, dst: results[i]!, from: 0, to: outLen, at: 0 }); return; }
    for (let c0 = 0; c0 < F; c0 += T) {
      const c1 = Math.min(F, c0 + T);
      const a = Math.max(0, c0 - H), b = Math.min(F, c1 + H);
      // tile sample s ↔ global sample a·hop + s (every stage is shift-equivariant with its stride)
      const g0 = c0 * hop, g1 = c1 === F ? outLen : c1 * hop;
      pieces.push({ src: x, a, b, frames: b - a, dst: results[i]!, from: g0 - a * hop, to: g1 - a * hop, at: g0 });
    }
  });
  const byLen = new Map<number, Piece[]>();
  for (const p of pieces) {
    const g = byLen.get(p.frames);
    if (g) g.push(p); else byLen.set(p.frames, [p]);
  }
  const batches: Piece[][] = [];
  for (const [frames, group] of byLen) {
    const per = Math.max(1, Math.floor(budget / frames));
    for (let g0 = 0; g0 < group.length; g0 += per) batches.push(group.slice(g0, g0 + per));
  }
  const place = (batch: Piece[], y: Float32Array, n: number): void =>
    batch.forEach((p, b) => p.dst.set(y.subarray(b * n + p.from, b * n + p.to), p.at));
  const onHost = !devicePath() && pieces.every((p) => 'data' in p.src);
  if (onHost) {
    for (const batch of batches) {
      const frames = batch[0]!.frames;
      const x = new Float32Array(batch.length * frames * nm);
      batch.forEach((p, b) => x.set((p.src as { data: Float32Array }).data.subarray(p.a * nm, p.b * nm), b * frames * nm));
      const y = yield* gen.forwardHostSteps(x, batch.length, frames);
      place(batch, y.data, y.shape[1]);
    }
    return results;
  }
  const outs: tf.Tensor2D[] = [];
  let all: tf.Tensor | null = null;
  try {
    for (const batch of batches) {
      const x = tf.tidy(() => tf.stack(batch.map((p) => 'data' in p.src
        ? tf.tensor2d(p.src.data.subarray(p.a * nm, p.b * nm), [p.frames, nm])
        : tf.slice(p.src.tensor, [p.a, 0], [p.frames, nm]))) as tf.Tensor3D);
      try {
        outs.push(yield* gen.forwardNWCSteps(x));
      } finally { x.dispose(); }
    }
    all = tf.tidy(() => tf.concat(outs.map((y) => tf.reshape(y, [-1]))));
    const read = new HostRead(all, 'vocoder output');
    yield read;
    let off = 0;
    batches.forEach((batch, i) => {
      const [B, n] = outs[i]!.shape;
      place(batch, read.value.subarray(off, off + B * n), n);
      off += B * n;
    });
    return results;
  } finally {
    for (const y of outs) y.dispose();
    all?.dispose();
  }
}
