/**
 * GM:vocoder_chunk_infer (MuCodec tools/get_melvaehifigan48k.py): the overlapping 1024-frame vocoder calls of a
 * mel, computed with the whole-mel call reused between chunk edges, and stitched exactly as upstream.
 */
import * as tf from '@tensorflow/tfjs-core';
import { drainSteps, type Step } from '../steps.js';
import { toFloat32, type HostTensor } from '../hosttensor.js';
import type { HifiGanGenerator, MelInput } from './hifigan.js';

/** GM:vocoder_chunk_infer constants */
export const VOCODER_CHUNK = 256 * 4;
export const VOCODER_SHIFT = 256;

/**
 * The vocoder calls GM:vocoder_chunk_infer makes for `frames` mel frames: [start, end) frame ranges for
 * c = 0, 256, 512, … stopping after the first c with c + 1024 ≥ frames.
 */
export function vocoderChunks(frames: number, chunk = VOCODER_CHUNK, shift = VOCODER_SHIFT): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let c = 0; c < frames; c += shift) {
    out.push([c, Math.min(frames, c + chunk)]);
    if (c + chunk >= frames) break;
  }
  return out;
}

/**
 * Streaming form of vocoder_chunk_infer's stitching on host arrays (one row per batch item):
 * first call: cut to num_samples = int(len/1024)·1024, ov_sample = int(num_samples·768/1024), ramp =
 * np.linspace(0, 1, ov_sample) (float64); later calls: cur[:, :num_samples], running[−ov:] = running[−ov:]·(1 − ramp)
 * + cur[:ov]·ramp (float64 arithmetic, stored as float32), then cur[ov:] appended.
 */
export class ChunkStitcher {
  private parts: Float32Array[][] = [];
  private numSamples = -1;
  private ovSample = 0;
  private ramp: Float64Array | null = null;

  constructor(readonly rows: number, readonly chunk = VOCODER_CHUNK, readonly shift = VOCODER_SHIFT) {}

  /** add one vocoder call's output (rows × samples, row-major) */
  push(wav: Float32Array, samples: number): void {
    const R = this.rows;
    if (wav.length !== R * samples) throw new Error(`ChunkStitcher: ${wav.length} values are not ${R} rows × ${samples}`);
    if (this.numSamples < 0) {
      const ns = Math.floor(samples / this.chunk) * this.chunk;
      this.numSamples = ns;
      const ov = Math.floor((ns * (this.chunk - this.shift)) / this.chunk);
      this.ovSample = ov;
      this.ramp = linspace01(ov);
      const rows: Float32Array[] = [];
      for (let r = 0; r < R; r++) rows.push(wav.slice(r * samples, r * samples + ns));
      this.parts.push(rows);
      return;
    }
    const ov = this.ovSample;
    const n = Math.min(samples, this.numSamples);
    if (n < ov) throw new Error(`vocoder_chunk_infer: a later chunk gave ${n} samples, fewer than the ${ov}-sample overlap`);
    const tails = this.takeTail(ov);
    const ramp = this.ramp!;
    const rows: Float32Array[] = [];
    for (let r = 0; r < R; r++) {
      const cur = wav.subarray(r * samples, r * samples + n);
      const t = tails[r]!;
      for (let i = 0; i < ov; i++) t[i] = t[i]! * (1 - ramp[i]!) + cur[i]! * ramp[i]!; // float64, stored float32
      rows.push(cur.slice(ov));
    }
    this.parts.push(tails, rows);
  }

  /** detach the last `ov` samples of the running output (per row) as separate arrays */
  private takeTail(ov: number): Float32Array[] {
    const total = this.length;
    if (total < ov) throw new Error(`vocoder_chunk_infer: running output (${total}) shorter than the overlap (${ov})`);
    const tails: Float32Array[] = Array.from({ length: this.rows }, () => new Float32Array(ov));
    let need = ov;
    while (need > 0) {
      const last = this.parts[this.parts.length - 1]!;
      const len = last[0]!.length;
      const take = Math.min(need, len);
      for (let r = 0; r < this.rows; r++) tails[r]!.set(last[r]!.subarray(len - take), need - take);
      if (take === len) this.parts.pop();
      else this.parts[this.parts.length - 1] = last.map((a) => a.subarray(0, len - take));
      need -= take;
    }
    return tails;
  }

  get length(): number {
    let n = 0;
    for (const p of this.parts) n += p[0]!.length;
    return n;
  }

  /** (rows, samples) row-major */
  result(): { data: Float32Array; shape: [number, number] } {
    const n = this.length;
    const out = new Float32Array(this.rows * n);
    let off = 0;
    for (const p of this.parts) {
      for (let r = 0; r < this.rows; r++) out.set(p[r]!, r * n + off);
      off += p[0]!.length;
    }
    return { data: out, shape: [this.rows, n] };
  }
}

/** np.linspace(0, 1, n) (float64): i·(1/(n−1)), last exactly 1 */
export function linspace01(n: number): Float64Array {
  const y = new Float64Array(n);
  if (n === 1) { y[0] = 0; return y; }
  const step = 1 / (n - 1);
  for (let i = 0; i < n; i++) y[i] = i * step;
  y[n - 1] = 1;
  return y;
}

/** frames [f0, f1) of a host NCL mel (B, nm, F) as NWC (B, f1 − f0, nm) */
export function nclToNwc(mel: Float32Array, B: number, nm: number, F: number, f0: number, f1: number): Float32Array {
  const len = f1 - f0;
  const out = new Float32Array(B * len * nm);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < nm; c++) {
      const src = (b * nm + c) * F + f0;
      for (let t = 0; t < len; t++) out[(b * len + t) * nm + c] = mel[src + t]!;
    }
  }
  return out;
}

/**
 * GM:vocoder_chunk_infer: `frames` mel frames of B rows → (B, samples) float32 (upstream returns a numpy
 * array). `chunkNWC(f0, f1)` supplies the mel frames [f0, f1) as NWC (B, f1 − f0, num_mels): host values, or a device
 * tensor (the device path: then every call stays on the device and the outputs are read back once, see generateMany).
 *
 * Upstream vocodes every 1024-frame chunk (shift 256) separately, so each frame is vocoded ~4 times. A chunk's
 * output differs from the output of ONE call on the whole mel only within `receptiveFrames()` (24) frames of the
 * chunk's own ends, where its zero padding is seen instead of the neighbouring frames. So (`reuse`, default):
 *   - the whole mel is vocoded once per row (time-tiled with halos when large; exact, see generateMany);
 *   - for each chunk end that is not an end of the whole mel, a short call on the 2·H frames next to it
 *     (H = haloFrames ≥ receptiveFrames) gives the chunk's first/last H frames of output exactly;
 *   - each chunk's output = its edge samples from those calls + the whole-mel samples between them;
 * then the chunks are stitched exactly as upstream. Same values as calling the vocoder per chunk (every output
 * sample is computed from the same inputs by the same layers); ≈ 2.4× less work for a 4096-frame window.
 * All calls of equal length (the rows, the edges) run batched. `reuse: false` runs the chunks themselves.
 */
export type ChunkSource = (f0: number, f1: number) => Float32Array | tf.Tensor3D;

export function vocoderChunkInfer(
  gen: HifiGanGenerator, chunkNWC: ChunkSource, B: number, frames: number,
  onCall?: (i: number, inFrames: number, outSamples: number) => void, opts: { reuse?: boolean } = {},
): { data: Float32Array; shape: [number, number] } {
  return drainSteps(vocoderChunkInferSteps(gen, chunkNWC, B, frames, onCall, opts));
}

/** vocoderChunkInfer as a step generator (a yield after every ResBlock of every vocoder call) */
export function* vocoderChunkInferSteps(
  gen: HifiGanGenerator, chunkNWC: ChunkSource, B: number, frames: number,
  onCall?: (i: number, inFrames: number, outSamples: number) => void, opts: { reuse?: boolean } = {},
): Generator<Step, { data: Float32Array; shape: [number, number] }, void> {
  const made: tf.Tensor[] = []; // device inputs sliced here (freed when the calls are done)
  try {
    return yield* chunkInferSteps(gen, chunkNWC, B, frames, made, onCall, opts);
  } finally {
    for (const t of made) t.dispose();
  }
}

function* chunkInferSteps(
  gen: HifiGanGenerator, chunkNWC: ChunkSource, B: number, frames: number, made: tf.Tensor[],
  onCall?: (i: number, inFrames: number, outSamples: number) => void, opts: { reuse?: boolean } = {},
): Generator<Step, { data: Float32Array; shape: [number, number] }, void> {
  const st = new ChunkStitcher(B);
  const chunks = vocoderChunks(frames);
  const nm = gen.cfg.num_mels, hop = gen.hop, H = gen.haloFrames, E = 2 * H;
  if (H < gen.receptiveFrames()) throw new Error(`vocoder: haloFrames ${H} is below the receptive field (${gen.receptiveFrames()} frames)`);
  const rowsOf = (f0: number, f1: number): MelInput[] => {
    const d = chunkNWC(f0, f1);
    const per = (f1 - f0) * nm;
    if (d instanceof tf.Tensor) {
      made.push(d);
      if (d.shape[0] !== B || d.shape[1] !== f1 - f0 || d.shape[2] !== nm) {
        throw new Error(`vocoder_chunk_infer: frames [${f0}, ${f1}) gave (${d.shape.join(', ')}), expected (${B}, ${f1 - f0}, ${nm})`);
      }
      return Array.from({ length: B }, (_, b) => {
        const t = tf.tidy(() => tf.reshape(tf.slice(d, [b, 0, 0], [1, f1 - f0, nm]), [f1 - f0, nm]) as tf.Tensor2D);
        made.push(t);
        return { tensor: t, frames: f1 - f0 };
      });
    }
    if (d.length !== B * per) throw new Error(`vocoder_chunk_infer: frames [${f0}, ${f1}) gave ${d.length} values, expected ${B} × ${f1 - f0} × ${nm}`);
    return Array.from({ length: B }, (_, b) => ({ data: d.subarray(b * per, (b + 1) * per), frames: f1 - f0 }));
  };
  const reuse = (opts.reuse ?? true) && chunks.length > 1;
  // a chunk is assembled from edges + the whole-mel output when it is long enough; otherwise computed directly
  const composed = (f0: number, f1: number): boolean => reuse && f1 - f0 >= 2 * E;
  const jobs: MelInput[] = [];
  const wholeAt = reuse ? jobs.push(...rowsOf(0, frames)) - B : -1;
  const plan = chunks.map(([f0, f1]) => {
    if (!composed(f0, f1)) return { direct: jobs.push(...rowsOf(f0, f1)) - B, left: -1, right: -1 };
    const left = f0 > 0 ? jobs.push(...rowsOf(f0, f0 + E)) - B : -1;
    const right = f1 < frames ? jobs.push(...rowsOf(f1 - E, f1)) - B : -1;
    return { direct: -1, left, right };
  });
  const outs = yield* gen.generateManySteps(jobs);
  jobs.length = 0;
  chunks.forEach(([f0, f1], i) => {
    const p = plan[i]!;
    const len = f1 - f0;
    const n = gen.outLength(len);
    const y = new Float32Array(B * n);
    for (let b = 0; b < B; b++) {
      const row = y.subarray(b * n, (b + 1) * n);
      if (p.direct >= 0) { row.set(outs[p.direct + b]!); continue; }
      // chunk sample s ↔ whole sample f0·hop + s; left edge call: s; right edge call (starts at f1 − E): s − (len − E)·hop
      const s0 = p.left >= 0 ? H * hop : 0;
      const s1 = p.right >= 0 ? (len - H) * hop : n;
      if (p.left >= 0) row.set(outs[p.left + b]!.subarray(0, s0), 0);
      row.set(outs[wholeAt + b]!.subarray(f0 * hop + s0, f0 * hop + s1), s0);
      if (p.right >= 0) row.set(outs[p.right + b]!.subarray(s1 - (len - E) * hop, n - (len - E) * hop), s1);
    }
    onCall?.(i, len, n);
    st.push(y, n);
  });
  return st.result();
}

/** vocoder_chunk_infer on a host NCL mel (B, num_mels, frames), as decode_to_waveform feeds it */
export function vocoderChunkInferNCL(gen: HifiGanGenerator, mel: HostTensor): { data: Float32Array; shape: [number, number] } {
  return drainSteps(vocoderChunkInferNCLSteps(gen, mel));
}

/** vocoderChunkInferNCL as a step generator (drainStepsAsync reads a device backend asynchronously) */
export function vocoderChunkInferNCLSteps(gen: HifiGanGenerator, mel: HostTensor): Generator<Step, { data: Float32Array; shape: [number, number] }, void> {
  const [B, nm, F] = mel.shape as [number, number, number];
  const d = toFloat32(mel);
  return vocoderChunkInferSteps(gen, (f0, f1) => nclToNwc(d, B, nm, F, f0, f1), B, F);
}
