/**
 * Encode path: sound2code / fetch_codes parity (tests/fixtures/encoder/mucodec.*), their float intermediates,
 * the host-side pieces (output_len, loop padding, peak normalisation), the file-level path against the e2e
 * reference codes (a 44.1 kHz WAV → functional resample → sound2code = upstream's 76 codes), the MuCodec API
 * (load from a converted-weights folder, encode, progress, abort, no tensor leaks) and the `encode` command.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveExpected, readConfigFile } from '../convert/manifest.js';
import { writeSafetensors } from '../convert/safetensors.js';
import { loadTorchCheckpoint, stateDictRoot } from '../convert/torch.js';
import { resampledLength } from '../src/audio/resample.js';
import { readWav } from '../src/audio/wav.js';
import { initBackend } from '../src/backend.js';
import { MuCodec, type MuCodecConfig } from '../src/codec.js';
import { readCodesFile } from '../src/codesfile.js';
import { encodeCommand } from '../src/commands/encode.js';
import {
  MIN_SAMPLES, WINDOW_SAMPLES, loopWindow, outputLength, peakNormalize, prepareStereo48k, windowCount,
} from '../src/encoder.js';
import { compareTensor, loadCase } from '../src/fixtures.js';
import { toFloat32, type HostTensor } from '../src/hosttensor.js';
import { Params } from '../src/params.js';
import { defineParityTests, FIXTURES, fixtureDir } from './parity-helper.js';

defineParityTests('encoder', { only: ['mucodec.fetch_codes', 'mucodec.sound2code_long', 'mucodec.sound2code_short'] });

function caseConfig(cfg: Record<string, unknown>): MuCodecConfig {
  return {
    muq: { ...(cfg.muq as Record<string, unknown>), conformer: cfg.conformer as Record<string, unknown> },
    layer_num: (cfg['MuCodec layer_num (constructor arg)'] as number | undefined) ?? (cfg['layer (index into layer_results)'] as number) + 1,
    rvq_muencoder_emb: cfg.rvq as MuCodecConfig['rvq_muencoder_emb'],
  };
}

describe('encode intermediates (reference mid.* tensors, case tolerance)', () => {
  beforeAll(async () => { await initBackend(); });

  it('fetch_codes: 24 kHz MuQ input after per-row 0.9 normalisation, mono mix, rsq48tomuencoder', async () => {
    const c = await loadCase(fixtureDir('encoder', 'mucodec.fetch_codes'));
    const codec = MuCodec.fromParams(await c.weights(), caseConfig(c.json.config!));
    try {
      const x = c.t('in.input_audios');
      const [B, , L] = x.shape as [number, number, number];
      const d = toFloat32(x);
      const ref = c.t('mid.muq_input_24k');
      const n24 = ref.shape[1]!;
      const got = new Float32Array(B * n24);
      for (let b = 0; b < B; b++) got.set((await codec.encoder()).muqInput(d.subarray(2 * b * L, (2 * b + 1) * L), d.subarray((2 * b + 1) * L, (2 * b + 2) * L)), b * n24);
      const r = compareTensor('mid.muq_input_24k', { dtype: 'float32', shape: [B, n24], data: got }, ref, c.json.tolerance as { max_abs: number; rel_l2: number });
      expect(r.pass, `max_abs ${r.maxAbs} rel_l2 ${r.relL2}`).toBe(true);
    } finally {
      codec.dispose();
    }
  });

  it('sound2code_long: MuQ embeddings of both windows (loop padding + 0.8 item normalisation)', async () => {
    const c = await loadCase(fixtureDir('encoder', 'mucodec.sound2code_long'));
    const cfg = c.json.config!;
    const p = await c.weights();
    const before = tf.memory().numTensors;
    const codec = MuCodec.fromParams(p, caseConfig(cfg));
    try {
      const tile = c.t('in.audio_tile');
      const n = tile.shape[1]!;
      const L = cfg.input_length as number;
      const td = toFloat32(tile);
      const orig = [0, 1].map((ch) => Float32Array.from({ length: L }, (_, i) => td[ch * n + (i % n)]!));
      const pre = peakNormalize(orig, 0.8);
      expect(pre).toBe(orig); // peak 0.7 < 0.8: untouched
      const items = [0, 1].map((w) => [loopWindow(pre[0]!, w), loopWindow(pre[1]!, w)] as [Float32Array, Float32Array]);
      const r = await (await codec.encoder()).fetchCodes(items, { withEmb: true });
      const embT = tf.transpose(r.emb!, [0, 2, 1]);
      r.emb!.dispose();
      const got: HostTensor = { dtype: 'float32', shape: embT.shape, data: Float32Array.from(await embT.data()) };
      embT.dispose();
      const cmp = compareTensor('mid.window_embs', got, c.t('mid.window_embs'), c.json.tolerance as { max_abs: number; rel_l2: number });
      expect(cmp.pass, `max_abs ${cmp.maxAbs} rel_l2 ${cmp.relL2}`).toBe(true);
    } finally {
      codec.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('sound2code host-side pieces', () => {
  it('output_len = int(L / 48000.0 * 25) + 1 in double precision (NOTES pitfall 10)', () => {
    expect(outputLength(55680)).toBe(29); // not 55680 // 1920 + 1 = 30
    expect(outputLength(2400017)).toBe(1251);
    expect(outputLength(100811)).toBe(53);
    expect(outputLength(145111)).toBe(76);
    expect(outputLength(60 * 48000)).toBe(1501);
    let differs = 0;
    for (let L = 1; L < 5_000_000; L++) if (outputLength(L) !== Math.floor(L / 1920) + 1) differs++;
    expect(differs).toBe(144);
  });

  it('loop-padded windows equal upstream torch.cat doubling + reshape (literal emulation)', () => {
    for (const L of [100811, 1966559, 1966560, 2400017, 3933121]) {
      const x = Float32Array.from({ length: L }, (_, i) => i);
      // generate.py: while len < min+480: cat(x, x); n = len // min + 1; cat(x, x)[:, :n·(min+480)]
      let a = x;
      while (a.length < WINDOW_SAMPLES) { const b = new Float32Array(2 * a.length); b.set(a); b.set(a, a.length); a = b; }
      const nWin = Math.floor(a.length / MIN_SAMPLES) + 1;
      const doubled = new Float32Array(2 * a.length); doubled.set(a); doubled.set(a, a.length);
      expect(nWin * WINDOW_SAMPLES).toBeLessThanOrEqual(doubled.length);
      expect(windowCount(L)).toBe(nWin);
      for (let w = 0; w < nWin; w++) {
        const lit = doubled.subarray(w * WINDOW_SAMPLES, (w + 1) * WINDOW_SAMPLES);
        const got = loopWindow(x, w);
        let same = lit.length === got.length;
        for (let j = 0; same && j < lit.length; j++) same = lit[j] === got[j];
        expect(same, `L=${L} window ${w}`).toBe(true);
      }
    }
    expect(windowCount(100811)).toBe(2);
    expect(windowCount(2400017)).toBe(2);
    expect(() => windowCount(0)).toThrow(/positive/);
  });

  it('peak normalisation in float32: x / fl32(peak / fl32(thr)) only when peak > fl32(thr)', () => {
    const thr = Math.fround(0.8);
    const same = [new Float32Array([thr, -0.1])];
    expect(peakNormalize(same, 0.8)).toBe(same);
    const x = [new Float32Array([0.3, -0.95]), new Float32Array([0.5, 0.25])];
    const y = peakNormalize(x, 0.8);
    const norm = Math.fround(Math.fround(0.95) / thr);
    expect(Array.from(y[0]!)).toEqual([Math.fround(Math.fround(0.3) / norm), Math.fround(Math.fround(-0.95) / norm)]);
    expect(Array.from(y[1]!)).toEqual([Math.fround(0.5 / norm), Math.fround(0.25 / norm)]);
  });

  it('file-level input checks', () => {
    const c = new Float32Array(10);
    expect(() => prepareStereo48k({ sampleRate: 48000, channels: [c, c, c] })).toThrow(/only mono or stereo audio is supported \(got 3 channels\)/);
    expect(() => prepareStereo48k({ sampleRate: 48000, channels: [new Float32Array(0)] })).toThrow(/empty/);
    expect(() => prepareStereo48k({ sampleRate: 48000, channels: [c, new Float32Array(9)] })).toThrow(/different lengths/);
    expect(() => prepareStereo48k({ sampleRate: 48000, channels: [Float32Array.of(0, NaN)] })).toThrow(/sample 1 is not a finite number/);
    const m = Float32Array.of(0.1, 0.2);
    const [l, r] = prepareStereo48k({ sampleRate: 48000, channels: [m] });
    expect(l).toBe(m); expect(r).toBe(m); // mono duplicated, 48 kHz untouched
    expect(prepareStereo48k({ sampleRate: 16000, channels: [Float32Array.from({ length: 300 }, (_, i) => Math.sin(i / 5))] })[0].length).toBe(900);
  });
});

describe('MuCodec API, file-level encode and the encode command (e2e fixture weights)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'encode-'));
  const weightsDir = join(tmp, 'weights');
  const e2e = JSON.parse(readFileSync(join(FIXTURES, 'audio_in/e2e_codes.json'), 'utf8')) as { codes: number[]; offset_48k_in_cut: number; length_48k: number };
  const cutWav = join(FIXTURES, 'audio_in/e2e_theme_44k1_cut.wav');
  let codec: MuCodec;

  beforeAll(async () => {
    await initBackend();
    // a weights folder as `mucodec convert` writes it: config.json + encoder.safetensors holding exactly the
    // encoder tensors the converter derives from the configuration (no decoder/vae files: encode must not need them)
    const cfg = readConfigFile(join(FIXTURES, 'convert/e2e.case-config.json'));
    const ck = await loadTorchCheckpoint(join(FIXTURES, 'convert/e2e.weights.pt'));
    const root = stateDictRoot(ck);
    const want = deriveExpected(cfg).encoder;
    const sources = [];
    for (const t of want) {
      const h = await ck.read(root + t.name);
      sources.push({ name: t.name, dtype: 'float32' as const, shape: h.shape, load: () => toFloat32(h) });
    }
    await ck.close();
    await mkdir(weightsDir);
    await writeSafetensors(join(weightsDir, 'encoder.safetensors'), sources);
    await writeFile(join(weightsDir, 'config.json'), JSON.stringify({ format: 'mucodec-ts-weights', version: 1, model: cfg, files: { encoder: 'encoder.safetensors', decoder: 'decoder.safetensors', vae: 'vae.safetensors' } }));
    codec = await MuCodec.load({ weightsDir });
  });
  afterAll(() => { codec?.dispose(); rmSync(tmp, { recursive: true, force: true }); });

  it('44.1 kHz WAV → functional resample (float32 kernel) → sound2code = upstream codes exactly', async () => {
    const a = await readWav(cutWav);
    const [l, r] = prepareStereo48k(a);
    const o = e2e.offset_48k_in_cut, n = e2e.length_48k;
    const codes = await (await codec.encoder()).sound2code([l.subarray(o, o + n), r.subarray(o, o + n)]);
    expect(Array.from(codes)).toEqual(e2e.codes);
  });

  it('encode(): metadata, progress per window, codes = sound2code of the file-level input, no tensor leaks', async () => {
    const a = await readWav(cutWav);
    const prog: string[] = [];
    const r = await codec.encode(a, { onProgress: (p) => prog.push(`${p.window}/${p.windows} ${p.frames}/${p.totalFrames}`) });
    const L48 = resampledLength(a.channels[0]!.length, 44100, 48000);
    const frames = outputLength(L48);
    expect(r.meta).toEqual({ sampleRate: 44100, originalLength: 133700, channels: 2, frameRate: 25, codebookSize: 64, muqLayer: 7, nCodebooks: 1, frames });
    expect(r.codes.length).toBe(frames);
    expect(prog).toEqual([`0/1 0/${frames}`, `1/1 ${frames}/${frames}`]);
    const [l, rr] = prepareStereo48k(a);
    const before = tf.memory().numTensors; // after a first encode (MuQ caches its rotary tables)
    expect(Array.from(await (await codec.encoder()).sound2code([l, rr]))).toEqual(Array.from(r.codes));
    expect(tf.memory().numTensors).toBe(before);
    // the e2e clip lies at 48 kHz offset 297 of this input: its codes are not a shifted copy (the windows
    // start elsewhere), but both encodes agree in length bookkeeping
    expect(r.codes.every((v) => v >= 0 && v < 64)).toBe(true);
  });

  it('an aborted encode rejects and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await expect(codec.encode({ sampleRate: 48000, channels: [new Float32Array(4800)] }, { signal: ac.signal })).rejects.toThrow('stop now');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an abort fired from outside stops the encode inside MuQ (between its layers), leaks nothing; forwardAsync = forward', async () => {
    const enc = await codec.encoder();
    const a = await readWav(cutWav);
    await codec.encode(a); // warm caches (rotary tables) so the tensor count is steady
    const before = tf.memory().numTensors;
    const ac = new AbortController();
    const prog: number[] = [];
    setImmediate(() => ac.abort(new Error('stopped in MuQ')));
    await expect(codec.encode(a, { signal: ac.signal, onProgress: (p) => prog.push(p.window) })).rejects.toThrow('stopped in MuQ');
    expect(prog).toEqual([0]); // the only window never finished
    expect(tf.memory().numTensors).toBe(before);
    // the MuQ forward itself: async and sync forms give the same bytes
    const row = enc.muqInput(prepareStereo48k(a)[0], prepareStereo48k(a)[1]);
    const h1 = enc.muq.forward([row], enc.layerIndex);
    const h2 = await enc.muq.forwardAsync([row], enc.layerIndex);
    expect(Buffer.from(h2.dataSync().buffer).equals(Buffer.from(h1.dataSync().buffer))).toBe(true);
    h1.dispose(); h2.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('load() errors are clear; load → encode → dispose leaves no tensor behind', async () => {
    await expect(MuCodec.load({ weightsDir: join(tmp, 'nowhere') })).rejects.toThrow(/nowhere: no config\.json/);
    const before = tf.memory().numTensors;
    const lazy = await MuCodec.load({ weightsDir });
    expect(tf.memory().numTensors).toBe(before); // parts load on first use
    lazy.dispose();
    const c2 = await MuCodec.load({ weightsDir, parts: ['encoder'] });
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    const r = await c2.encode({ sampleRate: 48000, channels: [Float32Array.from({ length: 4800 }, (_, i) => Math.sin(i / 7) * 0.3)] });
    expect(r.codes.length).toBe(3);
    c2.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('`mucodec encode` writes a valid .mcodes atomically, with progress lines', async () => {
    const out = join(tmp, 'theme.mcodes');
    const err = new PassThrough();
    let text = '';
    err.on('data', (d: Buffer) => { text += d.toString(); });
    const logs: string[] = [];
    const wav = join(FIXTURES, 'audio_in/theme_16k_u8_mono_2s_excerpt.wav');
    const rc = await encodeCommand([wav, '-o', out, '--weights', weightsDir], { stderr: err as unknown as NodeJS.WriteStream, log: (l) => logs.push(l) });
    expect(rc).toBe(0);
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const f = await readCodesFile(out);
    expect(f).toMatchObject({ sampleRate: 16000, originalLength: 3000, channels: 1, frameRate: 25, codebookSize: 64, muqLayer: 7, nCodebooks: 1 });
    expect(f.frames).toBe(outputLength(9000));
    const direct = await codec.encode(await readWav(wav));
    expect(Array.from(f.codes)).toEqual(Array.from(direct.codes));
    expect(text).toContain('encode: 100% window 1/1');
    expect(logs.join('\n')).toMatch(/theme\.mcodes: 5 codes \(0\.20 s at 25 Hz\), 40 bytes \(1\.707 kbps\)/); // 32 + ceil(5·6 / 8) + 4
  });

  it('`mucodec encode` failures name the problem and leave no output', async () => {
    const out = join(tmp, 'bad.mcodes');
    await expect(encodeCommand([join(tmp, 'missing.wav'), '-o', out, '--weights', weightsDir])).rejects.toThrow(/missing\.wav: cannot read \(ENOENT\)/);
    await expect(encodeCommand([cutWav, '-o', out, '--weights', join(tmp, 'noweights')])).rejects.toThrow(/noweights: no config\.json/);
    await expect(encodeCommand([cutWav, '-o', out, '--bogus', '1'])).rejects.toThrow(/unknown option --bogus/);
    await expect(encodeCommand([])).rejects.toThrow(/exactly one input file/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('MuCodec.fromParams', () => {
  it('rejects a resampler kernel that is not torchaudio\'s', async () => {
    await initBackend();
    const c = await loadCase(fixtureDir('encoder', 'mucodec.sound2code_short'));
    const p = await c.weights();
    const map = new Map(p.map);
    const k = p.get('rsq48tomuencoder.kernel');
    const bad = Float32Array.from(k.data as Float32Array); bad[3]! += 1e-3;
    map.set('rsq48tomuencoder.kernel', { ...k, data: bad });
    const before = tf.memory().numTensors;
    const codec = MuCodec.fromParams(new Params(map, '', 'test'), caseConfig(c.json.config!));
    await expect(codec.encoder()).rejects.toThrow(/rsq48tomuencoder\.kernel\[3\].*differs/);
    codec.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
