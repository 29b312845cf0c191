/**
 * Issue 12 B5, B7, B10: the API checks what it is given before any work starts — codes as given (not converted
 * first), the options as the CLI checks its flags, config.json and its value types, and a codes file's header
 * against the model — and every message names the argument, the value and (for files) the file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../src/backend.js';
import { MuCodec, type DecodeOptions } from '../src/codec.js';
import { crc32, decodeCodesFile, encodeCodesFile, writeCodesFile, type CodesMeta } from '../src/codesfile.js';
import { decodeCommand } from '../src/commands/decode.js';
import { Params } from '../src/params.js';
import { TINY } from './helpers/tiny_codec.js';

const tmp = mkdtempSync(join(tmpdir(), 'mucodec-apiv-'));
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

/** the tiny model's codes meta (weights/tiny/config.json: codebook 64, layer_num 7, 25 codes per second) */
const META: CodesMeta = { sampleRate: 48000, originalLength: 48000, channels: 2, frameRate: 25, codebookSize: 64, muqLayer: 7, nCodebooks: 1 };
const quiet = { log: () => undefined, stderr: { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream };

let codec: MuCodec;
beforeAll(async () => {
  await initBackend();
  codec = await MuCodec.load({ weightsDir: TINY });
});
afterAll(() => { codec?.dispose(); });

/** nothing was loaded: the checks ran before any part of the model was built */
function nothingLoaded(c: MuCodec): boolean {
  const i = c as unknown as { enc: unknown; dec: unknown };
  return i.enc === null && i.dec === null;
}

describe('decode checks the codes as given, before converting or loading anything (B5)', () => {
  it.each([
    [[1.5], /decode: code 0 is 1\.5, not an integer/],
    [[3, Number.NaN], /decode: code 1 is NaN, not an integer/],
    [[2 ** 32 + 5], /decode: code 0 is 4294967301, outside the codebook \(0 … 63\)/],
    [[-1], /decode: code 0 is -1, outside the codebook/],
    [[1, 2, 64], /decode: code 2 is 64, outside the codebook \(0 … 63\)/],
    [['7'], /decode: code 0 is the string "7", not a number/],
    ['7', /decode: codes must be an Int32Array or an array of integers, got the string "7"/],
    [new Float32Array([1, 2]), /codes must be an Int32Array or an array of integers, got a Float32Array/],
    [null, /codes must be an Int32Array or an array of integers, got null/],
    [[], /decode: no codes/],
  ] as Array<[unknown, RegExp]>)('%j is refused', async (codes, msg) => {
    const before = tf.memory().numTensors;
    await expect(codec.decode(codes as number[], { steps: 1, seed: 1 })).rejects.toThrow(msg);
    expect(nothingLoaded(codec)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('decode / reconstruct / encode check their options as the CLI does (B5)', () => {
  const codes = [1, 2, 3];
  const audio = { sampleRate: 48000, channels: [new Float32Array(4800)] };
  it.each([
    [{ guidanceScale: Number.NaN }, /option guidanceScale is NaN, expected a finite number ≥ 0/],
    [{ guidanceScale: -1 }, /option guidanceScale is -1/],
    [{ seed: -5 }, /option seed is -5, expected an integer from 0 to 4294967295/],
    [{ seed: 1.5 }, /option seed is 1\.5/],
    [{ seed: 2 ** 32 }, /option seed is 4294967296/],
    [{ steps: 0 }, /option steps is 0, expected a positive integer/],
    [{ steps: 2.5 }, /option steps is 2\.5/],
    [{ steps: '5' }, /option steps is the string "5"/],
    [{ steps: Number.POSITIVE_INFINITY }, /option steps is Infinity/],
    [{ sampler: 'leapfrog' }, /option sampler: unknown sampler "leapfrog" \(choose one of: euler, heun, midpoint, rk4/],
    [{ sampler: {} }, /option sampler is a Object, expected a sampler name or a Solver/],
    [{ tSpan: [0, 0.5, 0.4, 1] }, /option tSpan: t-schedule is not strictly monotonic at point 2/],
    [{ tSpan: [0, Number.NaN, 1] }, /option tSpan: point 1 is NaN, not a finite number/],
    [{ tSpan: [0.1, 1] }, /option tSpan must run from 0 \(noise\) to 1 \(data\), got 0\.1 … 1/],
    [{ tSpan: [0, 0.5] }, /option tSpan must run from 0 \(noise\) to 1 \(data\)/],
    [{ tSpan: [0] }, /option tSpan: a t-schedule needs at least 2 points/],
    [{ duration: 0 }, /option duration is 0, expected a number of seconds in \(0, 40\.96\]/],
    [{ duration: 100 }, /option duration is 100/],
    [{ duration: Number.NaN }, /option duration is NaN/],
    [{ prompt: { sampleRate: 0, channels: [new Float32Array(10)] } }, /decode: prompt: sampleRate is 0, expected a positive integer/],
    [{ prompt: { sampleRate: 48000, channels: [new Float32Array(10), new Float32Array(10), new Float32Array(10)] } }, /prompt: channels must be an array of 1 \(mono\) or 2 \(stereo\) Float32Arrays, got 3 channels/],
    [{ prompt: { sampleRate: 48000, channels: [new Float32Array(10), new Float32Array(9)] } }, /prompt: channels have different lengths \(10 vs 9\)/],
    [{ prompt: { sampleRate: 48000, channels: [[0, 1]] } }, /prompt: channel 0 is an array, expected a Float32Array/],
    [{ prompt: { sampleRate: 48000, channels: [new Float32Array(0)] } }, /prompt: the audio is empty/],
    [{ seed: 1, noise: { randn: () => new Float32Array(0) } }, /give either seed or noise, not both/],
    [{ noise: {} }, /option noise is a Object, expected a NoiseSource/],
    [{ signal: 'stop' }, /option signal is the string "stop", expected an AbortSignal/],
    [{ onProgress: 5 }, /option onProgress is 5, expected a function/],
  ] as Array<[Record<string, unknown>, RegExp]>)('decode %j is refused before any work', async (opts, msg) => {
    await expect(codec.decode(codes, opts as DecodeOptions)).rejects.toThrow(msg);
    await expect(codec.reconstruct(audio, opts as DecodeOptions)).rejects.toThrow(msg.source.startsWith('decode') ? new RegExp(msg.source.replace(/^decode/, 'reconstruct')) : msg);
    expect(nothingLoaded(codec)).toBe(true);
  });

  it('encode / reconstruct: batchSize, the audio itself', async () => {
    await expect(codec.encode(audio, { batchSize: 0 })).rejects.toThrow(/encode: option batchSize is 0, expected a positive integer/);
    await expect(codec.reconstruct(audio, { batchSize: 1.5 })).rejects.toThrow(/reconstruct: option batchSize is 1\.5/);
    await expect(codec.encode({ sampleRate: 44100.5, channels: [new Float32Array(10)] })).rejects.toThrow(/encode: sampleRate is 44100\.5, expected a positive integer/);
    await expect(codec.encode({ sampleRate: 48000, channels: [] })).rejects.toThrow(/encode: channels must be an array of 1 \(mono\) or 2 \(stereo\) Float32Arrays, got 0 channels/);
    await expect(codec.encode(null as never)).rejects.toThrow(/encode: audio must be \{ sampleRate, channels \}, got null/);
    expect(nothingLoaded(codec)).toBe(true);
  });

  it('reconstruct(x, { steps: undefined }) samples with reconstruct\'s default of 50 steps, not decode\'s 20', async () => {
    const c = await MuCodec.load({ weightsDir: TINY });
    const before = tf.memory().numTensors;
    try {
      const short = { sampleRate: 48000, channels: [Float32Array.from({ length: 24000 }, (_, i) => 0.3 * Math.sin(i / 9))] };
      const ac = new AbortController();
      const seen: number[] = [];
      // stop at the first sampler step: the step count it reports is the one the solve runs with
      await expect(c.reconstruct(short, {
        steps: undefined, seed: 1, signal: ac.signal,
        onProgress: (p) => { if (p.phase === 'sample') { seen.push(p.steps!); ac.abort(new Error('seen the step count')); } },
      })).rejects.toThrow('seen the step count');
      expect(seen).toEqual([50]);
    } finally {
      c.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('config.json and the model configuration are checked, naming the file and the key (B10)', () => {
  const tinyConfig = JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')) as { model: Record<string, Record<string, unknown>> };
  /** a folder holding only config.json (MuCodec.load reads nothing else until a part is used) */
  const load = (name: string, json: string): Promise<MuCodec> => {
    const d = join(tmp, `cfg-${name}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'config.json'), json);
    return MuCodec.load({ weightsDir: d });
  };
  it.each([
    ['null', 'null', /cfg-null[/\\]config\.json: expected a JSON object with a "model" configuration, got null/],
    ['array', '[1, 2]', /config\.json: expected a JSON object with a "model" configuration, got an array/],
    ['string', '"weights"', /config\.json: expected a JSON object .* got the string "weights"/],
    ['nomodel', '{"format": "mucodec-ts-weights"}', /config\.json: no "model" configuration/],
    ['modelnull', '{"model": null}', /config\.json: "model": expected the model configuration \(an object\), got null/],
    ['format', '{"format": 3, "model": {}}', /config\.json: format the number 3 is not "mucodec-ts-weights"/],
    ['nomuq', '{"model": {"layer_num": 7}}', /config\.json: "model": "muq" is missing/],
  ])('%s', async (name, json, msg) => {
    await expect(load(name, json)).rejects.toThrow(msg);
  });

  it.each([
    ['rvq_muencoder_emb', 'codebook_size', '64', /"rvq_muencoder_emb\.codebook_size" is the string "64", expected a number/],
    ['rvq_muencoder_emb', 'codebook_dim', 32.5, /"rvq_muencoder_emb\.codebook_dim" is the number 32\.5, expected a positive integer/],
    ['muq', 'encoder_dim', '32', /"muq\.encoder_dim" is the string "32", expected a number/],
    ['estimator', 'num_layers', null, /"estimator\.num_layers" is null, expected a number/],
    ['vae', 'embed_dim', [16], /"vae\.embed_dim" is an array, expected a number/],
  ] as Array<[string, string, unknown, RegExp]>)('model.%s.%s = %j', async (section, key, value, msg) => {
    const j = structuredClone(tinyConfig);
    j.model[section]![key] = value;
    await expect(load(`${section}-${key}`, JSON.stringify(j))).rejects.toThrow(msg);
    // the same configuration given in memory
    await expect(MuCodec.load({ weights: new Map(), config: j.model as never })).rejects.toThrow(msg);
  });

  it('nested values too: a string in the vocoder\'s dilation lists, a layer_num string', async () => {
    const j = structuredClone(tinyConfig);
    (j.model.vae!.vocoder as { resblock_dilation_sizes: unknown[][] }).resblock_dilation_sizes[1]![2] = '5';
    await expect(load('dil', JSON.stringify(j))).rejects.toThrow(/"vae\.vocoder\.resblock_dilation_sizes\[1\]\[2\]" is the string "5", expected a number/);
    const k = structuredClone(tinyConfig);
    (k.model as Record<string, unknown>).layer_num = '7';
    await expect(load('layer', JSON.stringify(k))).rejects.toThrow(/"layer_num" is the string "7", expected a number/);
  });

  it('a shape check whose expected dimension is not an integer says so (not "has shape (64, 32), expected (64, 32)")', () => {
    const p = new Params(new Map([['w', { dtype: 'float32' as const, shape: [64, 32], data: new Float32Array(64 * 32) }]]), '', 'd.safetensors');
    expect(() => p.get('w', ['64' as unknown as number, 32])).toThrow('d.safetensors: tensor "w": the expected shape\'s dimension 0 is the string "64", not an integer (check the model configuration)');
    expect(p.get('w', [64, -1]).shape).toEqual([64, 32]);
  });
});

/** .mcodes bytes with header fields changed and the checksum made right again (a valid file, odd values) */
function withHeader(meta: CodesMeta, codes: number[], edit: (dv: DataView) => void): Uint8Array {
  const b = encodeCodesFile({ ...meta, codes }).slice();
  const dv = new DataView(b.buffer);
  edit(dv);
  dv.setUint32(b.length - 4, crc32(b.subarray(0, b.length - 4)), true);
  return b;
}

describe('.mcodes header fields: what the file must hold, and what the model can decode (B7)', () => {
  it.each([
    ['sample rate 0', (dv: DataView) => dv.setUint32(6, 0, true), /x\.mcodes: header: sample rate 0 is invalid/],
    ['channels 0', (dv: DataView) => dv.setUint8(18, 0), /x\.mcodes: header: channel count 0 is invalid \(the original audio is mono \(1\) or stereo \(2\)\)/],
    ['channels 3', (dv: DataView) => dv.setUint8(18, 3), /header: channel count 3 is invalid/],
    ['frame rate 0', (dv: DataView) => dv.setUint16(20, 0, true), /header: frame rate 0 is invalid/],
    ['MuQ layer 0', (dv: DataView) => dv.setUint8(27, 0), /header: MuQ layer 0 is invalid/],
  ])('the reader refuses %s', (_what, edit, msg) => {
    expect(() => decodeCodesFile(withHeader(META, [1, 2, 3], edit), 'x.mcodes')).toThrow(msg);
  });

  it('the writer refuses the same', () => {
    expect(() => encodeCodesFile({ ...META, sampleRate: 0, codes: [1] })).toThrow(/\.mcodes: sample rate 0 is invalid/);
    expect(() => encodeCodesFile({ ...META, channels: 0, codes: [1] })).toThrow(/channel count 0 is invalid/);
    expect(() => encodeCodesFile({ ...META, frameRate: 0, codes: [1] })).toThrow(/frame rate 0 is invalid/);
  });

  it.each([
    [{ frameRate: 50 }, /a\.mcodes: frame rate \(codes per second\) is 50 in the file, but the model in .*tiny has 25/],
    [{ muqLayer: 3 }, /a\.mcodes: MuQ layer \(layer_num\) is 3 in the file, but the model in .*tiny has 7/],
    [{ codebookSize: 16384 }, /a\.mcodes: codebook size is 16384 in the file, but the model in .*tiny has 64/],
    [{ nCodebooks: 2 }, /a\.mcodes: codebook count is 2 in the file, but the model in .*tiny has 1/],
  ] as Array<[Partial<CodesMeta>, RegExp]>)('codec.checkCodesMeta refuses %j', (change, msg) => {
    expect(() => codec.checkCodesMeta({ ...META, ...change }, 'a.mcodes')).toThrow(msg);
  });

  it('codec.checkCodesMeta accepts what the model encodes; the model\'s own encode meta passes', () => {
    expect(() => codec.checkCodesMeta(META)).not.toThrow();
    expect(() => codec.checkCodesMeta({ ...META, sampleRate: 44100, channels: 1 })).not.toThrow();
  });

  it('the CLI decode refuses a file whose frame rate or MuQ layer the model cannot honour, before loading, writing nothing', async () => {
    for (const [name, change, msg] of [
      ['fr50', { frameRate: 50 }, /fr50\.mcodes: frame rate \(codes per second\) is 50 in the file/],
      ['layer3', { muqLayer: 3 }, /layer3\.mcodes: MuQ layer \(layer_num\) is 3 in the file/],
    ] as Array<[string, Partial<CodesMeta>, RegExp]>) {
      const mc = join(tmp, `${name}.mcodes`);
      await writeCodesFile(mc, { ...META, ...change, codes: [1, 2, 3, 4] });
      const out = join(tmp, `${name}.wav`);
      const t0 = Date.now();
      await expect(decodeCommand([mc, '-o', out, '--steps', '1', '--weights', TINY, '--quiet'], quiet)).rejects.toThrow(msg);
      expect(Date.now() - t0).toBeLessThan(10_000); // refused up front, not after a decode
      expect(existsSync(out)).toBe(false);
    }
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
