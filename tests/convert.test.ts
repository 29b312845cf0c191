/**
 * Checkpoint conversion (convert/convert.ts, convert/manifest.ts) and the inspect / convert CLI pieces.
 *
 * The e2e fixture weights (tests/fixtures/convert/e2e.weights.pt, from reference/e2e/mucodec.sound2sound: one
 * flat dict holding the keys of all three real checkpoints at tiny size) are split with a small torch.save
 * writer (tests/helpers/torchsave.ts) into the three real container layouts: a flat mucodec.pt, a fairseq
 * muq.pt ({args, cfg, model}), a Lightning audioldm.pth ({state_dict, epoch, ...} with extra LatentDiffusion
 * entries). Conversion must reproduce the fixture's values exactly, and reject containers with missing or
 * mis-shaped tensors, listing all of them.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert } from '../convert/convert.js';
import { convertCommand, inspectCommand } from '../convert/cli-commands.js';
import {
  REAL_CONFIG, deriveExpected, expectedFromManifests, isNeeded, readConfigFile, resampleKernelShape, vaeExpected, type VaeConfig,
} from '../convert/manifest.js';
import { readSafetensors } from '../convert/safetensors.js';
import { loadTorchCheckpoint, readStateDict } from '../convert/torch.js';
import { toFloat32, type HostTensor } from '../src/hosttensor.js';
import { narrowToHalf } from '../src/half.js';
import { FIXTURES } from './parity-helper.js';
import { T, obj, odict, torchSave, type PyVal } from './helpers/torchsave.js';

const E2E_WEIGHTS = join(FIXTURES, 'convert/e2e.weights.pt');
const E2E_CONFIG = join(FIXTURES, 'convert/e2e.case-config.json');
const tmp = mkdtempSync(join(tmpdir(), 'convert-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const key = (t: { name: string; shape: number[] }): string => `${t.name} ${JSON.stringify(t.shape)}`;

function negate(t: HostTensor): HostTensor {
  return { ...t, data: Float32Array.from(t.data as Float32Array, (v) => -v - 1) };
}

/** Split the e2e weights into the three real containers; `edit` may drop / replace entries per container. */
async function makeContainers(
  dir: string,
  all: Map<string, HostTensor>,
  edit: { mucodec?: (m: Map<PyVal, PyVal>) => void; audioldm?: (m: Map<PyVal, PyVal>) => void } = {},
): Promise<{ mucodec: string; muq: string; audioldm: string }> {
  const mucodec = new Map<PyVal, PyVal>();
  const muqModel = new Map<PyVal, PyVal>();
  const sd = new Map<PyVal, PyVal>();
  for (const [k, t] of all) {
    if (k === 'scale_factor' || k.startsWith('first_stage_model.')) { sd.set(k, T(t)); continue; }
    if (k.startsWith('muencoder.')) {
      const mk = k.slice('muencoder.'.length);
      // MuCodec loads muq.pt first, then mucodec.pt overrides: mucodec.pt here lacks conformer layer 3 (taken
      // from muq.pt), and muq.pt holds wrong values for every key mucodec.pt overrides.
      if (mk.startsWith('model.conformer.layers.3.')) { muqModel.set(mk, T(t)); continue; }
      muqModel.set(mk, T(t.dtype === 'float32' ? negate(t) : t));
    }
    mucodec.set(k, T(t, k === 'zero_cond_embedding1'));
  }
  // newer torch names for the (ignored) pos_conv_embed weight norm
  const g: HostTensor = { dtype: 'float32', shape: [1, 1, 128], data: new Float32Array(128) };
  muqModel.set('model.conformer.pos_conv_embed.conv.parametrizations.weight.original0', T(g));
  // LatentDiffusion entries a converter must skip without reading: this one's storage is shorter than its
  // shape, so reading it would fail.
  const small: HostTensor = { dtype: 'float32', shape: [4], data: new Float32Array(4) };
  sd.set('model.diffusion_model.input_blocks.0.0.weight', { kind: 'tensor', t: small, view: { base: small, offset: 0, shape: [1000, 1000], stride: [1000, 1] } });
  sd.set('cond_stage_models.0.model.text_branch.weight', T({ dtype: 'float16', shape: [3], data: new Uint16Array(3) }));
  edit.mucodec?.(mucodec);
  edit.audioldm?.(sd);
  mkdirSync(dir, { recursive: true });
  const paths = { mucodec: join(dir, 'mucodec.pt'), muq: join(dir, 'muq.pt'), audioldm: join(dir, 'audioldm_48k.pth') };
  await torchSave(paths.mucodec, odict(mucodec), { root: 'mucodec' });
  await torchSave(paths.muq, new Map<PyVal, PyVal>([
    ['args', obj('argparse', 'Namespace', new Map<string, PyVal>([['arch', 'muq']]))],
    ['cfg', new Map<PyVal, PyVal>([['model', new Map<PyVal, PyVal>([['encoder_dim', 32]])]])],
    ['model', odict(muqModel)],
    ['optimizer_history', [new Map<PyVal, PyVal>([['num_updates', 1000]])]],
  ]), { root: 'archive' });
  await torchSave(paths.audioldm, new Map<PyVal, PyVal>([
    ['epoch', 3], ['global_step', 12345], ['state_dict', odict(sd)],
  ]), { root: 'audioldm_48k' });
  return paths;
}

describe('expected tensors', () => {
  it('derived from the real configuration = the released-checkpoint manifests (names and shapes)', () => {
    const d = deriveExpected(REAL_CONFIG);
    const m = expectedFromManifests(REAL_CONFIG);
    for (const f of ['encoder', 'decoder', 'vae'] as const) {
      expect(d[f].map(key).sort(), f).toEqual(m[f].map(key).sort());
    }
    // layer_num 7 -> layer_results[6] -> conformer layers 0..5, no final LayerNorm
    const names = d.encoder.map((t) => t.name);
    expect(names).toContain('muencoder.model.conformer.layers.5.final_layer_norm.bias');
    expect(names.some((n) => n.includes('layers.6.'))).toBe(false);
    expect(names.some((n) => n.includes('conformer.layer_norm.'))).toBe(false);
    expect(names.some((n) => n.includes('pos_conv_embed'))).toBe(false);
    expect(resampleKernelShape(48000, 24000)).toEqual([1, 1, 28]);
  });

  it('derived from the e2e fixture configuration = the fixture checkpoint keys that inference needs', async () => {
    const cfg = readConfigFile(E2E_CONFIG);
    const d = deriveExpected(cfg);
    const ck = await loadTorchCheckpoint(E2E_WEIGHTS);
    const have = ck.tensors().filter((t) => isNeeded(t.name, cfg)).map(key).sort();
    await ck.close();
    const want = [...new Set([...d.encoder, ...d.decoder, ...d.vae].map(key))].sort();
    expect(want).toEqual(have);
  });

  it('VAE/vocoder derivation matches every audio fixture container (each sub-module it holds)', async () => {
    const root = join(FIXTURES, 'audio');
    let checked = 0;
    for (const c of existsSync(root) ? readdirSync(root).filter((d) => existsSync(join(root, d, "case.json"))).sort() : []) {
      const cj = JSON.parse(readFileSync(join(root, c, 'case.json'), 'utf8')) as { config: Record<string, unknown>; weights?: string };
      if (!cj.weights) continue;
      const cfg = cj.config;
      // vae cases hold ddconfig (+ vocoder); hifigan.generate holds the vocoder config itself
      const vocoder = (cfg.vocoder ?? (cfg.resblock ? cfg : REAL_CONFIG.vae.vocoder)) as VaeConfig['vocoder'];
      const vae: VaeConfig = { ...REAL_CONFIG.vae, ...(cfg.ddconfig ? { ddconfig: cfg.ddconfig as VaeConfig['ddconfig'], embed_dim: cfg.embed_dim as number } : {}), vocoder };
      const sd = await readStateDict(join(root, c, cj.weights), 'state_dict.first_stage_model.');
      const module = (n: string): string => n.split('.')[0]!;
      const present = new Set([...sd.keys()].map(module));
      const want = vaeExpected(vae).filter((t) => present.has(module(t.name))).map(key).sort();
      expect(want, c).toEqual([...sd].map(([name, t]) => key({ name, shape: t.shape })).sort());
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(5);
  });
});

describe('convert', () => {
  let all: Map<string, HostTensor>;
  beforeAll(async () => { all = await readStateDict(E2E_WEIGHTS); });

  it('converts the three containers: expected names, exact values, muq.pt fallback, mucodec.pt override', async () => {
    const dir = join(tmp, 'ok');
    const src = await makeContainers(dir, all);
    const out = join(dir, 'weights');
    const progress: number[] = [];
    const r = await convert({ ...src, outDir: out, config: E2E_CONFIG, onProgress: (d, t) => progress.push(d / t) });
    expect(r.files.map((f) => f.file)).toEqual(['encoder.safetensors', 'decoder.safetensors', 'vae.safetensors']);
    expect(progress.at(-1)).toBe(1);
    const cfg = readConfigFile(E2E_CONFIG);
    const d = deriveExpected(cfg);
    const layer3 = d.encoder.filter((t) => t.name.startsWith('muencoder.model.conformer.layers.3.')).length;
    expect(layer3).toBeGreaterThan(0);
    expect(r.sources['encoder:muq']).toBe(layer3);
    for (const f of ['encoder', 'decoder', 'vae'] as const) {
      const got = await readSafetensors(join(out, `${f}.safetensors`));
      expect([...got.keys()], f).toEqual(d[f].map((t) => t.name));
      for (const [name, t] of got) {
        const ref = all.get(name)!;
        expect(t.dtype).toBe('float32');
        expect(t.shape, name).toEqual(ref.shape);
        expect(Buffer.compare(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
          Buffer.from(ref.data.buffer, ref.data.byteOffset, ref.data.byteLength)), name).toBe(0);
      }
    }
    const conf = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { model: { layer_num: number }; converted: { muq_layers_stored: number } };
    expect(conf.model.layer_num).toBe(7);
    expect(conf.converted.muq_layers_stored).toBe(6);
    expect(readdirSync(out).sort()).toEqual(['config.json', 'decoder.safetensors', 'encoder.safetensors', 'vae.safetensors']);
  });

  it('--dtype f16: decoder and VAE files in float16 (each value rounded to nearest even), statistics and scalars kept float32, the encoder file float32', async () => {
    const dir = join(tmp, 'f16');
    const src = await makeContainers(dir, all);
    const out = join(dir, 'weights');
    const r = await convert({ ...src, outDir: out, config: E2E_CONFIG, dtype: 'float16' });
    const f32 = await convert({ ...src, outDir: join(dir, 'w32'), config: E2E_CONFIG });
    const bytes = (f: string, d: string): number => statSync(join(d, f)).size;
    for (const f of ['decoder.safetensors', 'vae.safetensors']) expect(bytes(f, out), f).toBeLessThanOrEqual(0.6 * bytes(f, join(dir, 'w32')));
    expect(readFileSync(join(out, 'encoder.safetensors')).equals(readFileSync(join(dir, 'w32', 'encoder.safetensors')))).toBe(true);
    expect(r.files.map((f) => f.bytes)).not.toEqual(f32.files.map((f) => f.bytes));
    const conf = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { converted: { dtype: string; encoder_dtype: string; float32_kept: Record<string, string> } };
    expect(conf.converted.dtype).toBe('float16');
    expect(conf.converted.encoder_dtype).toBe('float32');
    expect(Object.keys(conf.converted.float32_kept).sort()).toEqual(['normfeat.counts', 'normfeat.sum_x', 'normfeat.sum_x2', 'scale_factor']);
    for (const f of ['decoder', 'vae'] as const) {
      for (const [name, t] of await readSafetensors(join(out, `${f}.safetensors`))) {
        const ref = toFloat32(all.get(name)!);
        if (conf.converted.float32_kept[name]) {
          expect(t.dtype, name).toBe('float32');
          expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(ref.buffer, ref.byteOffset, ref.byteLength)), name).toBe(true);
          continue;
        }
        expect(t.dtype, name).toBe('float16');
        const want = narrowToHalf(ref);
        expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(want.buffer)), name).toBe(true);
      }
    }
    // the same folder through the CLI's --from (a converted folder rewritten): the same bytes
    const again = join(dir, 'again');
    expect(await convertCommand(['--from', join(dir, 'w32'), '--dtype', 'f16', '-o', again], { log: () => undefined })).toBe(0);
    for (const f of ['encoder', 'decoder', 'vae']) expect(readFileSync(join(again, `${f}.safetensors`)).equals(readFileSync(join(out, `${f}.safetensors`))), f).toBe(true);
    await expect(convertCommand(['--from', join(dir, 'w32'), '--dtype', 'f8', '-o', again])).rejects.toThrow('option --dtype: "f8" is not a weights dtype (f32 or f16)');
    await expect(convertCommand(['--from', again, '--dtype', 'f16', '-o', again])).rejects.toThrow(/--from and -o are the same folder/);
  });

  it('rejects containers with missing or mis-shaped tensors, listing all of them, and writes nothing', async () => {
    const dir = join(tmp, 'bad');
    const src = await makeContainers(dir, all, {
      mucodec: (m) => {
        m.delete('cfm_wrapper.estimator.proj_out.bias');
        m.delete('muencoder.model.conv.linear.bias'); // muq.pt still has it: not a problem
        const w = all.get('cond_muencoder_emb.weight')!;
        m.set('cond_muencoder_emb.weight', T({ ...w, shape: [...w.shape].reverse() }));
        m.set('zero_cond_embedding1', T({ dtype: 'int64', shape: [1024], data: new BigInt64Array(1024) }));
      },
      audioldm: (m) => { m.delete('first_stage_model.vocoder.conv_post.weight'); },
    });
    const out = join(dir, 'weights');
    let err = '';
    try {
      await convert({ ...src, outDir: out, config: readConfigFile(E2E_CONFIG) });
    } catch (e) {
      err = (e as Error).message;
    }
    expect(err).toMatch(/convert: 4 expected tensors are missing or mis-shaped/);
    expect(err).toContain('missing cfm_wrapper.estimator.proj_out.bias (128) (looked for mucodec:cfm_wrapper.estimator.proj_out.bias)');
    expect(err).toContain('mis-shaped cond_muencoder_emb.weight: mucodec:cond_muencoder_emb.weight has (32, 512), expected (512, 32)');
    expect(err).toContain('mis-typed zero_cond_embedding1: mucodec:zero_cond_embedding1 is int64, expected a float tensor');
    expect(err).toContain('missing first_stage_model.vocoder.conv_post.weight (1, 1, 7) (looked for audioldm:state_dict.first_stage_model.vocoder.conv_post.weight)');
    expect(err).not.toContain('conv.linear.bias');
    expect(existsSync(out)).toBe(false);
  });

  it('real configuration: checks against the manifests and reports every missing tensor', async () => {
    const dir = join(tmp, 'real');
    const src = await makeContainers(dir, all);
    let err = '';
    try {
      await convert({ ...src, outDir: join(dir, 'weights') });
    } catch (e) {
      err = (e as Error).message;
    }
    // tiny fixture tensors against the real manifests: every needed tensor whose real shape differs from the
    // tiny one (or that the tiny model lacks) is reported
    const n = Object.values(expectedFromManifests()).flat()
      .filter((t) => { const h = all.get(t.name); return !h || key({ name: t.name, shape: h.shape }) !== key(t); }).length;
    expect(n).toBeGreaterThan(900);
    expect(err).toMatch(new RegExp(`convert: ${n} expected tensors are missing or mis-shaped`));
    expect(err).toContain('mis-shaped muencoder.model.conv.linear.weight: mucodec:muencoder.model.conv.linear.weight has (32, 256), expected (1024, 16384)');
    expect(err).toContain('mis-shaped muencoder.model.conformer.layers.5.ffn1.intermediate_dense.weight: ' +
      'mucodec:muencoder.model.conformer.layers.5.ffn1.intermediate_dense.weight has (64, 32), expected (4096, 1024)');
    expect(err).toContain('missing first_stage_model.encoder.down.0.block.1.norm1.weight (128) ' +
      '(looked for audioldm:state_dict.first_stage_model.encoder.down.0.block.1.norm1.weight)');
  });

  it('convertCommand', async () => {
    const dir = join(tmp, 'cli');
    const src = await makeContainers(dir, all);
    const lines: string[] = [];
    const rc = await convertCommand(['--mucodec', src.mucodec, '--muq', src.muq, '--audioldm', src.audioldm, '-o', join(dir, 'w'),
      '--config', E2E_CONFIG], { log: (s) => lines.push(s) });
    expect(rc).toBe(0);
    expect(lines.join('\n')).toMatch(/encoder\.safetensors: \d+ tensors/);
    expect(statSync(join(dir, 'w', 'vae.safetensors')).size).toBeGreaterThan(0);
    await expect(convertCommand(['--mucodec', src.mucodec, '-o', 'x'], { log: () => undefined })).rejects.toThrow(/--muq is required/);
    await expect(convertCommand(['--mucodec', 'a', '--bogus', '1'], { log: () => undefined })).rejects.toThrow(/unknown option --bogus/);
  });
});

describe('inspect', () => {
  function fixtureWeights(): string[] {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (e.endsWith('.pt')) out.push(p);
      }
    };
    walk(FIXTURES);
    return out.sort();
  }

  it('--json on every fixture weights.pt lists every tensor (name, dtype, shape)', async () => {
    const files = fixtureWeights();
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const lines: string[] = [];
      expect(await inspectCommand([f, '--json'], { log: (s) => lines.push(s) })).toBe(0);
      expect(lines.length).toBe(1);
      const arr = JSON.parse(lines[0]!) as Array<{ name: string; dtype: string; shape: number[] }>;
      expect(arr.length, f).toBeGreaterThan(0);
      for (const t of arr) {
        expect(typeof t.name).toBe('string');
        expect(Array.isArray(t.shape)).toBe(true);
      }
      const caseJson = join(f, '..', 'case.json');
      if (existsSync(caseJson)) {
        // the case's module tensors are all listed under the container path + weights_prefix
        const cj = JSON.parse(readFileSync(caseJson, 'utf8')) as { weights_prefix?: string; outputs: Record<string, string>; stage: string };
        const names = arr.map((t) => t.name);
        if (cj.stage === 'torch.load') {
          expect(names.sort(), f).toEqual(Object.keys(cj.outputs).sort());
          const ref = await readSafetensors(join(f, '..', 'tensors.safetensors'));
          for (const t of arr) expect(t.shape, `${f} ${t.name}`).toEqual(ref.get(cj.outputs[t.name]!)!.shape);
        } else {
          const p = cj.weights_prefix ?? '';
          expect(names.some((n) => n.startsWith(p) || n.startsWith(`state_dict.${p}`) || n.startsWith(`model.${p}`)), f).toBe(true);
        }
      }
    }
  });

  it('text output and safetensors files', async () => {
    const lines: string[] = [];
    await inspectCommand([join(FIXTURES, 'torchload/nested/weights.pt')], { log: (s) => lines.push(s) });
    expect(lines.some((l) => /^state_dict\.first_stage_model\.w +float32 +\(2, 3\)$/.test(l)), lines.join('\n')).toBe(true);
    expect(lines.at(-1)).toMatch(/torch zip, 8 tensors, 30 values, state dict root "state_dict\."/);
    const st: string[] = [];
    await inspectCommand([join(FIXTURES, 'torchload/dtypes/tensors.safetensors'), '--json'], { log: (s) => st.push(s) });
    expect(JSON.parse(st[0]!)).toContainEqual({ name: 'out.i64', dtype: 'int64', shape: [10] });
  });
});
