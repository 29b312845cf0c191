import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConvTranspose1d } from '../layers/conv.js';
import { initBackend } from '../src/backend.js';
import { loadCase } from '../src/fixtures.js';
import type { HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
import { WindowCrossFader, concatRows, windowSamples } from '../src/synthesis.js';
import { planCode2Sound } from '../src/decoder.js';
import { ChunkStitcher, linspace01, vocoderChunks } from '../src/vocoder/chunk_infer.js';
import { BandedConv1d, ConvTranspose1dPolyphase, setVocoderWinograd } from '../src/vocoder/conv.js';
import { HifiGanGenerator } from '../src/vocoder/hifigan.js';
import { fixtureDir } from './parity-helper.js';
import { lcgRand } from './helpers/lcg.js';

const rand = lcgRand;

beforeAll(async () => { await initBackend(); });

describe('vocoder_chunk_infer rules', () => {
  it('calls: c = 0, 256, … until c + 1024 ≥ frames', () => {
    expect(vocoderChunks(40)).toEqual([[0, 40]]);
    expect(vocoderChunks(1024)).toEqual([[0, 1024]]);
    // the decode_to_waveform fixture: 1032 frames → [1024, 776] frames
    expect(vocoderChunks(1032)).toEqual([[0, 1024], [256, 1032]]);
    // one real 40.96 s window: 4096 frames → 13 calls of 1024 frames
    const real = vocoderChunks(4096);
    expect(real.length).toBe(13);
    expect(real.every(([a, b]) => b - a === 1024)).toBe(true);
  });

  // lengths from NOTES §4 / case.json: vocoder output is frames·480 + 16 samples
  function stitchLength(frames: number): number {
    const st = new ChunkStitcher(1);
    for (const [a, b] of vocoderChunks(frames)) {
      const n = (b - a) * 480 + 16;
      st.push(new Float32Array(n), n);
    }
    return st.result().shape[1];
  }

  it('result length: 1024-multiple crop when frames < 1024, frames·480 when every call saw 1024, +16 when the last was shorter', () => {
    expect(stitchLength(40)).toBe(18432); // 19216 → 18432
    expect(stitchLength(4096)).toBe(4096 * 480);
    expect(stitchLength(1032)).toBe(495376); // case.json out_samples
    expect(stitchLength(1032)).toBe(1032 * 480 + 16);
  });

  it('cross-fade: float64 linspace ramp, running·(1 − ramp) + cur·ramp stored as float32', () => {
    // first call 3000 samples (→ 2048 kept, overlap 1536), second call 3000 samples (→ cut to 2048)
    const a = rand(3000, 1), b = rand(3000, 2);
    const st = new ChunkStitcher(1);
    st.push(a, 3000);
    st.push(b, 3000);
    const r = st.result();
    expect(r.shape).toEqual([1, 2048 + 2048 - 1536]);
    const ov = 1536;
    const ramp = linspace01(ov);
    expect(ramp[0]).toBe(0);
    expect(ramp[ov - 1]).toBe(1);
    for (const i of [0, 1, 700, ov - 1]) {
      const want = Math.fround(a[2048 - ov + i]! * (1 - ramp[i]!) + b[i]! * ramp[i]!);
      expect(r.data[2048 - ov + i]).toBe(want);
    }
    expect(r.data[100]).toBe(a[100]);
    expect(r.data[2048]).toBe(b[ov]);
    expect(r.data[r.data.length - 1]).toBe(b[2047]);
  });
});

describe('ConvTranspose1d (polyphase)', () => {
  for (const [k, u] of [[12, 6], [10, 5], [8, 4], [4, 2], [7, 3], [3, 4]] as const) {
    it(`k ${k}, stride ${u}, padding (k−u)//2 matches tf.conv2dTranspose`, () => {
      const cin = 5, cout = 3, L = 9, pad = Math.max(0, Math.floor((k - u) / 2));
      const p = new Params(new Map<string, HostTensor>([
        ['up.weight', { dtype: 'float32', shape: [cin, cout, k], data: rand(cin * cout * k, k * 10 + u) }],
        ['up.bias', { dtype: 'float32', shape: [cout], data: rand(cout, 3) }],
      ]));
      const before = tf.memory().numTensors;
      const poly = new ConvTranspose1dPolyphase(p, 'up', u, pad);
      const ref = new ConvTranspose1d(p, 'up', { stride: u, padding: pad });
      const x = tf.tensor3d(rand(2 * L * cin, 9), [2, L, cin]);
      const a = poly.apply(x), b = ref.apply(x);
      expect(a.shape).toEqual([2, (L - 1) * u - 2 * pad + k, cout]);
      expect(a.shape).toEqual(b.shape);
      const da = a.dataSync(), db = b.dataSync();
      for (let i = 0; i < da.length; i++) expect(Math.abs(da[i]! - db[i]!)).toBeLessThan(1e-5);
      [a, b, x].forEach((t) => t.dispose());
      poly.dispose(); ref.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('BandedConv1d', () => {
  for (const [k, d] of [[3, 1], [15, 1], [11, 5], [7, 3]] as const) {
    it(`k ${k}, dilation ${d}: bands of 37 samples equal one whole-length conv (nn.Conv1d padding d·(k−1)/2)`, () => {
      const c = 6, L = 250, pad = Math.floor((k * d - d) / 2);
      const p = new Params(new Map<string, HostTensor>([
        ['c.weight', { dtype: 'float32', shape: [c, c, k], data: rand(c * c * k, k + d) }],
        ['c.bias', { dtype: 'float32', shape: [c], data: rand(c, 5) }],
      ]));
      const before = tf.memory().numTensors;
      const banded = new BandedConv1d(p, 'c', pad, d, 37);
      const whole = new BandedConv1d(p, 'c', pad, d);
      const x = tf.tensor3d(rand(2 * L * c, 11), [2, L, c]);
      const a = banded.apply(x), b = whole.apply(x);
      expect(a.shape).toEqual([2, L, c]);
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      // and against a direct sum: y[t, o] = b[o] + Σ_i Σ_j w[o, i, j] · x[t + j·d − pad, i]
      const xd = x.dataSync(), w = p.f32('c.weight'), bias = p.f32('c.bias'), ad = a.dataSync();
      for (const [n, t, o] of [[0, 0, 0], [1, 100, 3], [1, L - 1, 5]] as const) {
        let sum = bias[o]!;
        for (let i = 0; i < c; i++) for (let j = 0; j < k; j++) {
          const s = t + j * d - pad;
          if (s >= 0 && s < L) sum += w[(o * c + i) * k + j]! * xd[(n * L + s) * c + i]!;
        }
        expect(ad[(n * L + t) * c + o]).toBeCloseTo(sum, 4);
      }
      [a, b, x].forEach((t) => t.dispose());
      banded.dispose(); whole.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

/** max |F(3,3) − direct| of gen on mel (the F(3,3) rounding scale), the direct path switched on for the call */
function roundingScale(gen: HifiGanGenerator, mel: HostTensor, wino?: Float32Array): number {
  const tile = gen.tileFrames;
  gen.tileFrames = 0;
  const w = wino ?? gen.generate(mel).data;
  setVocoderWinograd(false);
  try {
    const d = gen.generate(mel).data;
    let m = 0;
    for (let i = 0; i < d.length; i++) m = Math.max(m, Math.abs(d[i]! - w[i]!));
    return m;
  } finally { setVocoderWinograd(true); gen.tileFrames = tile; }
}

describe('HiFi-GAN generator', () => {
  it('output length frames·480 + 16; no tensors leak', async () => {
    const c = await loadCase(fixtureDir('audio', 'hifigan.generate'));
    const before = tf.memory().numTensors;
    const gen = new HifiGanGenerator(await c.weights(), c.json.config as never);
    expect(gen.outLength(17)).toBe(17 * 480 + 16);
    expect(gen.outLength(1024)).toBe(491536);
    const y = gen.generate({ dtype: 'float32', shape: [1, 256, 5], data: rand(256 * 5, 4) });
    expect(y.shape).toEqual([1, 5 * 480 + 16]);
    gen.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  // the direct conv: every output sums its receptive field only, in a fixed order → exact; the F(3,3) convs (default on
  // wasm): a tile's transforms follow the call's first sample → equal to float32 rounding, bounded by twice what F(3,3)
  // itself changes against the direct conv on the same input (measured here: ≈ 3e-5 of a peak of 1)
  for (const wino of [false, true]) {
    it(`time tiles with a 32-frame halo give the whole-length result ${wino ? 'to rounding (Winograd convs)' : 'exactly (direct convs)'} (receptive field ±24 frames)`, async () => {
      setVocoderWinograd(wino);
      try {
        const c = await loadCase(fixtureDir('audio', 'hifigan.generate'));
        const gen = new HifiGanGenerator(await c.weights(), c.json.config as never);
        const F = 100;
        const mel: HostTensor = { dtype: 'float32', shape: [2, 256, F], data: rand(2 * 256 * F, 21).map((v) => v * 4 - 6) };
        const before = tf.memory().numTensors;
        gen.tileFrames = 0;
        const whole = gen.generate(mel);
        const bound = wino ? 2 * roundingScale(gen, mel, whole.data) : 1e-6;
        expect(bound).toBeLessThan(1e-4);
        for (const [tile, halo] of [[30, 32], [64, 24], [99, 32]] as const) {
          gen.tileFrames = tile; gen.haloFrames = halo;
          const tiled = gen.generate(mel);
          expect(tiled.shape).toEqual([2, F * 480 + 16]);
          let m = 0;
          for (let i = 0; i < whole.data.length; i++) m = Math.max(m, Math.abs(whole.data[i]! - tiled.data[i]!));
          expect(m).toBeLessThan(bound);
        }
        // too small a halo is visibly wrong: the check above has teeth
        gen.tileFrames = 30; gen.haloFrames = 2;
        const bad = gen.generate(mel);
        let m = 0;
        for (let i = 0; i < whole.data.length; i++) m = Math.max(m, Math.abs(whole.data[i]! - bad.data[i]!));
        expect(m).toBeGreaterThan(1e-4);
        gen.dispose();
        expect(tf.memory().numTensors).toBe(before);
      } finally { setVocoderWinograd(true); }
    });
  }

  for (const wino of [false, true]) {
  it(`vocoder_chunk_infer from one whole-mel call + chunk edges equals calling every chunk ${wino ? 'to rounding (Winograd)' : 'exactly (direct)'} (batched rows, short last chunk)`, async () => {
    setVocoderWinograd(wino);
    try {
    const { vocoderChunkInfer } = await import('../src/vocoder/chunk_infer.js');
    const c = await loadCase(fixtureDir('audio', 'hifigan.generate'));
    const gen = new HifiGanGenerator(await c.weights(), c.json.config as never);
    expect(gen.receptiveFrames()).toBe(24);
    const F = 1300, B = 2; // chunks [0,1024) [256,1280) [512,1300)
    const mel = rand(B * F * 256, 31).map((v) => v * 4 - 6); // NWC (B, F, 256)
    const chunk = (f0: number, f1: number): Float32Array => {
      const out = new Float32Array(B * (f1 - f0) * 256);
      for (let b = 0; b < B; b++) out.set(mel.subarray((b * F + f0) * 256, (b * F + f1) * 256), b * (f1 - f0) * 256);
      return out;
    };
    const before = tf.memory().numTensors;
    const calls: number[] = [];
    const direct = vocoderChunkInfer(gen, chunk, B, F, (_i, inFrames) => calls.push(inFrames), { reuse: false });
    expect(calls).toEqual([1024, 1024, 788]);
    gen.maxBatchBytes = 300 * gen.bytesPerFrame; // forces time tiles of the whole mel and several edge batches
    const reused = vocoderChunkInfer(gen, chunk, B, F);
    expect(reused.shape).toEqual(direct.shape);
    expect(reused.shape).toEqual([B, F * 480 + 16]);
    let m = 0;
    for (let i = 0; i < direct.data.length; i++) m = Math.max(m, Math.abs(direct.data[i]! - reused.data[i]!));
    const bound = wino ? 2 * roundingScale(gen, { dtype: 'float32', shape: [B, 256, 300], data: rand(B * 256 * 300, 32).map((v) => v * 4 - 6) }) : 1e-6;
    expect(bound).toBeLessThan(1e-4);
    expect(m).toBeLessThan(bound);
    // a halo below the receptive field is refused
    gen.haloFrames = 20;
    expect(() => vocoderChunkInfer(gen, chunk, B, F)).toThrow(/receptive field/);
    gen.dispose();
    expect(tf.memory().numTensors).toBe(before);
    } finally { setVocoderWinograd(true); }
  });
  }

  it('generateMany: equal-length inputs batched, mixed lengths, each equal to its own call', async () => {
    const c = await loadCase(fixtureDir('audio', 'hifigan.generate'));
    const gen = new HifiGanGenerator(await c.weights(), c.json.config as never);
    const lens = [40, 17, 40, 40, 3];
    const inputs = lens.map((f, i) => ({ data: rand(f * 256, 40 + i).map((v) => v * 4 - 6), frames: f }));
    const before = tf.memory().numTensors;
    gen.maxBatchBytes = 90 * gen.bytesPerFrame; // two 40-frame inputs per call
    const outs = gen.generateMany(inputs);
    inputs.forEach((x, i) => {
      const one = gen.generateNWC(x.data, 1, x.frames);
      expect(outs[i]!.length).toBe(x.frames * 480 + 16);
      let m = 0;
      for (let j = 0; j < one.data.length; j++) m = Math.max(m, Math.abs(one.data[j]! - outs[i]![j]!));
      expect(m).toBeLessThan(1e-6);
    });
    gen.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses weight-norm weights', () => {
    const p = new Params(new Map<string, HostTensor>([['conv_pre.weight_g', { dtype: 'float32', shape: [1], data: new Float32Array(1) }]]));
    expect(() => new HifiGanGenerator(p)).toThrow(/weight norm/);
  });
});

describe('code2sound window stitching', () => {
  it('window arithmetic of the real 40.96 s windows', () => {
    expect(windowSamples(40.96)).toEqual({ minSamples: 1966080, hopSamples: 1474560, ovlpSamples: 491520 });
    // target_len = int((codes_len − prompt codes) / 100 · 4 · sample_rate), as code2sound computes it
    expect(planCode2Sound(2300, 0, 468.75).targetLen).toBe(43125); // latents_to_audio fixture (how_run)
    expect(planCode2Sound(1000).targetLen).toBe(1000 * 1920);
    expect(planCode2Sound(1100, 100).targetLen).toBe(1000 * 1920);
  });

  it('streaming cross-fade equals the whole-output computation; emits only final samples', () => {
    const ov = 50, rows = 2;
    const wins = [rand(2 * 180, 1), rand(2 * 180, 2), rand(2 * 120, 3)].map((d, i) => {
      const n = d.length / 2;
      return [d.subarray(0, n), d.subarray(n)];
    });
    // reference: code2sound's loop on whole arrays (float64 arithmetic, float32 storage)
    const ramp = linspace01(ov);
    let out: Float32Array[] = wins[0]!.map((r) => Float32Array.from(r));
    for (const cur of wins.slice(1)) {
      out = out.map((o, r) => {
        const n = o.length;
        const next = new Float32Array(n + cur[r]!.length - ov);
        next.set(o);
        for (let i = 0; i < ov; i++) next[n - ov + i] = o[n - ov + i]! * (1 - ramp[i]!) + cur[r]![i]! * ramp[i]!;
        next.set(cur[r]!.subarray(ov), n);
        return next;
      });
    }
    const target = 333;
    const f = new WindowCrossFader(rows, ov, target);
    const pieces: Float32Array[][] = [];
    for (const w of wins) {
      const emitted = f.samplesEmitted;
      const p = f.push(w);
      pieces.push(p);
      expect(f.samplesEmitted).toBe(Math.min(target, emitted + p[0]!.length));
    }
    pieces.push(f.finish());
    expect(pieces[0]![0]!.length).toBe(180 - ov);
    const got = concatRows(pieces);
    expect(got.shape).toEqual([2, target]);
    for (let r = 0; r < rows; r++) {
      expect(Array.from((got.data as Float32Array).subarray(r * target, (r + 1) * target))).toEqual(Array.from(out[r]!.subarray(0, target)));
    }
  });

  it('a window shorter than the overlap is an error, as in upstream', () => {
    const f = new WindowCrossFader(1, 10);
    f.push([new Float32Array(30)]);
    expect(() => f.push([new Float32Array(5)])).toThrow(/shorter/);
  });
});

describe('latents → audio, phase by phase', () => {
  it('decodeMels / vocodeMels / pushAudio driven separately (all mels first) equal the reference; weights released', async () => {
    const { LatentsToAudio } = await import('../src/synthesis.js');
    const { AutoencoderKL } = await import('../src/vae/autoencoder.js');
    const c = await loadCase(fixtureDir('audio', 'mucodec.latents_to_audio'));
    const cfg = c.json.config as Record<string, never>;
    const p = await c.weights();
    const before = tf.memory().numTensors;
    const vae = new AutoencoderKL(p, { ddconfig: cfg.ddconfig, embed_dim: cfg.embed_dim });
    const voc = new HifiGanGenerator(p.sub('vocoder.'), cfg.vocoder);
    const l2a = new LatentsToAudio(vae, voc, {
      minSamples: cfg.min_samples, ovlpSamples: cfg.ovlp_samples, targetLen: cfg.target_len, residency: 'both',
    });
    // phase 1 for every window (only the VAE resident), then release it; phase 2 + 3 (only the vocoder)
    const mels = ['in.latent_0', 'in.latent_1', 'in.latent_2'].map((n) => l2a.decodeMels(c.t(n)));
    expect(mels[0]!.rows.length).toBe(2);
    expect(mels[0]!.rows[0]!.h).toBe(40);
    vae.dispose();
    const pieces = mels.map((m) => l2a.pushAudio(l2a.vocodeMels(m)));
    expect(voc.resident).toBe(true);
    voc.release();
    expect(voc.resident).toBe(false);
    pieces.push(l2a.finish());
    expect(tf.memory().numTensors).toBe(before);
    const out = concatRows(pieces);
    const ref = c.t('out.wav');
    expect(out.shape).toEqual(ref.shape);
    const a = out.data as Float32Array, b = ref.data as Float32Array;
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
    expect(m).toBeLessThan((c.json.tolerance as { max_abs: number }).max_abs);
    // window 0 emitted everything but its overlap tail (18432 − 4800)
    expect(pieces[0]![0]!.length).toBe(18432 - 4800);
  });
});
