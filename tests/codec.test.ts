/**
 * The codec as users call it (issue 7), on the tiny model in weights/tiny (every real block, random weights):
 * reconstruct length/format, seeded determinism, tensor hygiene, streaming memory, prompts, CLI round trip.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { MuCodec, cutPrompt } from '../src/codec.js';
import { readWav } from '../src/audio/wav.js';
import { planCode2Sound } from '../src/decoder.js';
import { TEST_WAV, TINY, allFinite, useTinyCodec } from './helpers/tiny_codec.js';

const env = useTinyCodec();

describe('MuCodec on the tiny model', () => {
  let codes: Int32Array;

  it('reconstruct: 48 kHz stereo of exactly the input duration, finite; encoder rebuilt after it; no tensors left after dispose', async () => {
    const before = tf.memory().numTensors;
    const c = await MuCodec.load({ weightsDir: TINY });
    const input = await readWav(TEST_WAV); // 44.1 kHz stereo, 6 s
    const first = await c.encode(input);
    const out = await c.reconstruct(input, { steps: 2, seed: 1 });
    // reconstruct frees the encoder's device state before decoding; the next encode rebuilds it, same codes
    const again = await c.encode(input);
    expect(Array.from(again.codes)).toEqual(Array.from(first.codes));
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(out.sampleRate).toBe(48000);
    expect(out.channels).toHaveLength(2);
    expect(out.channels[0]!.length).toBe(Math.round((input.channels[0]!.length / input.sampleRate) * 48000));
    expect(out.channels[1]!.length).toBe(out.channels[0]!.length);
    expect(allFinite(out.channels)).toBe(true);
  });

  it('decode: same seed → identical audio, another seed → different; length int(n/100·4·48000)', async () => {
    codes = (await env.codec.encode(await readWav(TEST_WAV))).codes;
    const a = await env.codec.decode(codes, { steps: 1, seed: 7 });
    const b = await env.codec.decode(codes, { steps: 1, seed: 7 });
    const c = await env.codec.decode(codes, { steps: 1, seed: 8 });
    expect(a.channels[0]!.length).toBe(Math.trunc(codes.length / 100 * 4 * 48000));
    expect(Buffer.from(a.channels[0]!.buffer).equals(Buffer.from(b.channels[0]!.buffer))).toBe(true);
    expect(Buffer.from(a.channels[1]!.buffer).equals(Buffer.from(b.channels[1]!.buffer))).toBe(true);
    let diff = 0;
    for (let i = 0; i < a.channels[0]!.length; i++) diff = Math.max(diff, Math.abs(a.channels[0]![i]! - c.channels[0]![i]!));
    expect(diff).toBeGreaterThan(1e-4);
  });

  it('decode reports progress per window and step, and an AbortSignal stops it cleanly', async () => {
    const seen: string[] = [];
    const ac = new AbortController();
    const before = tf.memory().numTensors;
    await expect(env.codec.decode(codes, {
      steps: 3, seed: 1, signal: ac.signal,
      onProgress: (p) => { seen.push(`${p.phase}:${p.window}:${p.step ?? ''}`); if (p.step === 2) ac.abort(new Error('stop here')); },
    })).rejects.toThrow('stop here');
    expect(seen[0]).toBe('sample:0:1'); // steps counted from 1 (codec_types.ts DecodeProgress.step)
    expect(seen).toContain('sample:0:2');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an AbortSignal during the VAE / vocoder phase stops it there, with nothing left allocated', async () => {
    const ac = new AbortController();
    const before = tf.memory().numTensors;
    const phases: string[] = [];
    await expect(env.codec.decode(codes, {
      steps: 1, seed: 1, signal: ac.signal,
      onProgress: (p) => { phases.push(p.phase); if (p.phase === 'audio') ac.abort(new Error('stop in synthesis')); },
    })).rejects.toThrow('stop in synthesis');
    expect(phases).toEqual(['sample', 'audio']);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects codes outside the codebook and empty codes clearly', async () => {
    await expect(env.codec.decode(Int32Array.from([1, 2, 64]))).rejects.toThrow(/code 2 is 64, outside the codebook \(0 … 63\)/);
    await expect(env.codec.decode(new Int32Array(0))).rejects.toThrow(/no codes/);
  });

  it('prompt cut as upstream: first 10.24 s, or 20.48–30.72 s when longer than 30.76 s', () => {
    const mk = (n: number): [Float32Array, Float32Array] => [Float32Array.from({ length: n }, (_, i) => i), new Float32Array(n)];
    const short = cutPrompt(mk(48000 * 12));
    expect(short[0].length).toBe(491520);
    expect(short[0][0]).toBe(0);
    const long = cutPrompt(mk(48000 * 31));
    expect(long[0].length).toBe(491520);
    expect(long[0][0]).toBe(983040);
    expect(cutPrompt(mk(1000))[0].length).toBe(1000);
  });
});

describe('window plan: any length decodes (upstream padding, and the lengths where upstream crashes)', () => {
  it.each([[76, 1], [700, 1], [1024, 1], [1606, 2], [1664, 2], [2000, 3], [2432, 3], [4500, 6]])('%i codes → %i window(s), cross-faded to int(n/100·4·48000)', (n, w) => {
    const p = planCode2Sound(n);
    expect(p.windowStarts).toHaveLength(w);
    expect((p.paddedLength - 256) % 768).toBe(0);
    expect(p.targetLen).toBe(Math.trunc(n / 100 * 4 * 48000));
    // every window lies inside the padded codes
    for (const s of p.windowStarts) expect(s + 1024).toBeLessThanOrEqual(p.paddedLength);
  });
});

describe('decode with a prompt (tiny model)', () => {
  it('prompt latents are window 0\'s in-context frames, prompt audio is not in the output, seeded runs repeat', async () => {
    const prompt = await readWav(TEST_WAV);
    const codes = Int32Array.from({ length: 60 }, (_, i) => (i * 5) % 64);
    const dec = (env.codec as unknown as { dec: { decoder: { inferenceCodesAsync: (a: Record<string, unknown>) => unknown } } | null });
    await (env.codec as unknown as { ensure: (p: string) => Promise<void> }).ensure('decoder'); // build the decoder part now
    const inner = dec.dec!.decoder;
    const seen: Array<{ incontextLength: number; trueLatents: { shape: number[]; data: Float32Array } }> = [];
    // the decoder's window loop calls inference_codes in its event-loop-friendly form
    const orig = inner.inferenceCodesAsync.bind(inner);
    inner.inferenceCodesAsync = (a) => { seen.push(a as never); return orig(a); };
    // record every draw so the prompt latent can be recomputed from the same posterior noise
    const draws: Float32Array[] = [];
    const { SeededNoise } = await import('../src/noise.js');
    const base = new SeededNoise(11);
    const recording = { randn: (shape: readonly number[]) => { const d = base.randn(shape); draws.push(d); return d; } };
    let out;
    try {
      out = await env.codec.decode(codes, { steps: 1, noise: recording, prompt });
    } finally {
      inner.inferenceCodesAsync = orig;
    }
    // 6 s prompt (< 30.76 s): its first 10.24 s = all of it → 288000 samples → 601 mel frames → 75 latent frames
    const F = 75;
    expect(seen[0]!.incontextLength).toBe(F);
    expect(out.channels[0]!.length).toBe(Math.trunc(60 / 100 * 4 * 48000)); // prompt codes not counted
    // draws: first_latent, then the VAE posterior ε of prompt channel 0 and 1, then the window's start noise
    expect(draws.map((d) => d.length)).toEqual([32 * 512 * 32, 16 * F * 32, 16 * F * 32, 32 * 512 * 32]);
    const { encodePromptLatent } = await import('../src/synthesis.js');
    const { ReplayNoise } = await import('../src/noise.js');
    const { prepareStereo48k } = await import('../src/encoder.js');
    const parts = (env.codec as unknown as { dec: { vae: never; stft: never } }).dec;
    const cut = cutPrompt(prepareStereo48k(prompt));
    const rows = new Float32Array(2 * cut[0].length); rows.set(cut[0]); rows.set(cut[1], cut[0].length);
    const eps = (d: Float32Array, shape: number[]) => ({ dtype: 'float32' as const, shape, data: d });
    const want = encodePromptLatent(parts.vae, parts.stft, rows, 2, new ReplayNoise([eps(draws[1]!, [1, 16, F, 32]), eps(draws[2]!, [1, 16, F, 32])]));
    const tl = seen[0]!.trueLatents;
    const wd = want.data as Float32Array;
    for (let c = 0; c < 32; c++) for (let t = 0; t < F; t++) for (let f = 0; f < 32; f += 7) {
      expect(tl.data[(c * 512 + t) * 32 + f]).toBe(wd[(c * F + t) * 32 + f]);
    }
  });
});

