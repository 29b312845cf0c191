/**
 * torch.save reading (convert/zip.ts, convert/pickle.ts, convert/torch.ts):
 * - every reference torchload case (tests/fixtures/torchload, made by torch.save in PyTorch 1.13) loads with
 *   EXACT values (also run through the parity runner, stage "torch.load");
 * - zip64 archives (zip64 extra fields, EOCD64 record/locator, entry offsets beyond 4 GiB in a sparse file),
 *   deflated entries, selective (streaming) reads, and clear errors.
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../convert/safetensors.js';
import { loadTorchCheckpoint, readFixtureWeights, readStateDict, stateDictRoot } from '../convert/torch.js';
import { ZipReader } from '../convert/zip.js';
import { getField, unpickle, PyObject } from '../convert/pickle.js';
import type { HostTensor } from '../src/hosttensor.js';
import { defineParityTests, FIXTURES } from './parity-helper.js';
import { T, buildZip, odict, torchSave, writePieces, type PyVal } from './helpers/torchsave.js';

const CASES = ['dtypes', 'fairseq_like', 'legacy_format', 'nested', 'views'];
const tmp = mkdtempSync(join(tmpdir(), 'torchload-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function f32(shape: number[], fill: (i: number) => number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => fill(i)) };
}

/** exact equality, bit for bit for floats (compares the values as float32 where the reference is float32) */
function expectExact(got: HostTensor, ref: HostTensor, what: string): void {
  expect(got.shape, what).toEqual(ref.shape);
  let a: ArrayLike<number | bigint> = got.data;
  if (ref.dtype === 'float32' && got.dtype !== 'float32') {
    // the reference stores float16/bfloat16/float64 tensors as float32
    a = got.dtype === 'float64' ? Float32Array.from(got.data as Float64Array) : f32FromHalf(got);
  } else {
    expect(got.dtype, what).toBe(ref.dtype);
  }
  const ab = new Uint8Array(new Float32Array(Array.from(a as ArrayLike<number>).map(Number)).buffer);
  if (ref.dtype === 'float32') {
    const rb = new Uint8Array(new Float32Array(ref.data as Float32Array).buffer);
    expect(Buffer.compare(Buffer.from(ab), Buffer.from(rb)), what).toBe(0);
  } else {
    expect(Array.from(got.data as ArrayLike<number | bigint>), what).toEqual(Array.from(ref.data as ArrayLike<number | bigint>));
  }
}

function f32FromHalf(t: HostTensor): Float32Array {
  const d = t.data as Uint16Array;
  const out = new Float32Array(d.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < d.length; i++) {
    if (t.dtype === 'bfloat16') { u[i] = d[i]! << 16; continue; }
    const h = d[i]!, s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
    out[i] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

describe('torchload reference cases: exact values', () => {
  for (const c of CASES) {
    it(c, async () => {
      const dir = join(FIXTURES, 'torchload', c);
      const json = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as { outputs: Record<string, string> };
      const ref = await readSafetensors(join(dir, 'tensors.safetensors'));
      const ckpt = await loadTorchCheckpoint(join(dir, 'weights.pt'));
      try {
        expect(ckpt.format).toBe(c === 'legacy_format' ? 'legacy' : 'zip');
        // every tensor in the file is listed under exactly the expected dotted names
        expect(ckpt.tensors().map((t) => t.name).sort()).toEqual(Object.keys(json.outputs).sort());
        for (const [name, tname] of Object.entries(json.outputs)) {
          expectExact(await ckpt.read(name), ref.get(tname)!, `${c}/${name}`);
        }
      } finally {
        await ckpt.close();
      }
    });
  }

  it('dtypes: storage dtypes are kept (no silent conversion)', async () => {
    const ck = await loadTorchCheckpoint(join(FIXTURES, 'torchload/dtypes/weights.pt'));
    const dt = Object.fromEntries(ck.tensors().map((t) => [t.name, `${t.dtype}${JSON.stringify(t.shape)}`]));
    expect(dt).toEqual({
      f32: 'float32[4,3]', f16: 'float16[5,2]', bf16: 'bfloat16[3,3]', f64: 'float64[2]', i64: 'int64[10]',
      i32: 'int32[5]', u8: 'uint8[9]', bool: 'bool[3]', scalar: 'float32[]', empty: 'float32[0,4]',
    });
    await ck.close();
  });

  it('fairseq_like: unknown globals are inert objects with readable fields; model. root', async () => {
    const ck = await loadTorchCheckpoint(join(FIXTURES, 'torchload/fairseq_like/weights.pt'));
    expect(ck.field('cfg.model.encoder_dim')).toBe(64);
    expect(ck.field('args.arch')).toBe('muq');
    expect((ck.root as Map<string, unknown>).get('cfg')).toBeInstanceOf(PyObject);
    expect(((ck.root as Map<string, unknown>).get('cfg') as PyObject).cls.qualname).toBe('omegaconf.dictconfig.DictConfig');
    expect(stateDictRoot(ck)).toBe('model.');
    await ck.close();
    const sd = await readFixtureWeights(join(FIXTURES, 'torchload/fairseq_like/weights.pt'), 'model.');
    expect([...sd.keys()].sort()).toEqual(['cls_token', 'linear.weight']);
  });

  it('nested: non-tensor leaves and state_dict. root', async () => {
    const dir = join(FIXTURES, 'torchload/nested');
    const json = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as { config: { non_tensor_leaves: Record<string, unknown> } };
    const ck = await loadTorchCheckpoint(join(dir, 'weights.pt'));
    for (const [k, v] of Object.entries(json.config.non_tensor_leaves)) expect(ck.field(k), k).toEqual(v);
    expect(stateDictRoot(ck)).toBe('state_dict.');
    await ck.close();
    const sd = await readStateDict(join(dir, 'weights.pt'), 'state_dict.first_stage_model.');
    expect([...sd.keys()]).toEqual(['w']);
    const ref = await readSafetensors(join(dir, 'tensors.safetensors'));
    expectExact(sd.get('w')!, ref.get('out.state_dict.first_stage_model.w')!, 'w');
  });
});

defineParityTests('torchload');

describe('zip container', () => {
  const a = f32([3, 4], (i) => i * 0.5 - 1);
  const b: HostTensor = { dtype: 'int64', shape: [5], data: BigInt64Array.from([1n, -2n, 3n, 2n ** 40n, -(2n ** 62n)]) };
  const value: PyVal = odict(new Map<PyVal, PyVal>([['enc.w', T(a)], ['enc.steps', T(b)]]));

  async function checkAB(path: string): Promise<void> {
    const sd = await readStateDict(path);
    expect([...sd.keys()]).toEqual(['enc.w', 'enc.steps']);
    expect(Array.from(sd.get('enc.w')!.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
    expect(sd.get('enc.steps')!.data).toEqual(b.data);
  }

  it('reads zip64 records (extra fields, EOCD64 record and locator)', async () => {
    const p = join(tmp, 'z64.pt');
    await torchSave(p, value, { zip64: true, root: 'weights.pt' });
    const z = await ZipReader.open(p);
    expect(z.names()).toEqual(['weights.pt/data.pkl', 'weights.pt/data/0', 'weights.pt/data/1', 'weights.pt/version']);
    expect(z.entry('weights.pt/data/0').size).toBe(48);
    await z.close();
    await checkAB(p);
  });

  it('reads entries beyond 4 GiB (sparse file, zip64 offsets)', async () => {
    const p = join(tmp, 'far.pt');
    const gap = 2 ** 32 + 12345;
    await torchSave(p, value, { zip64: true, gap });
    expect(statSync(p).size).toBeGreaterThan(2 ** 32);
    const z = await ZipReader.open(p);
    expect(z.entry('archive/data.pkl').localHeaderOffset).toBe(0);
    expect(z.entry('archive/data/0').localHeaderOffset).toBeGreaterThan(gap);
    await z.close();
    await checkAB(p);
  });

  it('reads deflated entries', async () => {
    const p = join(tmp, 'deflate.pt');
    await torchSave(p, value, { deflate: true });
    await checkAB(p);
  });

  it('takes the root folder name from the archive', async () => {
    for (const root of ['archive', 'weights', 'my.ckpt']) {
      const p = join(tmp, `root-${root}.pt`);
      await torchSave(p, value, { root });
      const ck = await loadTorchCheckpoint(p);
      expect(ck.archiveRoot).toBe(root);
      await ck.close();
      await checkAB(p);
    }
  });

  it('reads torch 2.x _rebuild_tensor_v3 tensors (UntypedStorage + dtype)', async () => {
    const p = join(tmp, 'v3.pt');
    const bf: HostTensor = { dtype: 'bfloat16', shape: [2, 2], data: Uint16Array.from([0x3f80, 0xc000, 0x4040, 0]) };
    await torchSave(p, odict(new Map<PyVal, PyVal>([['w', { kind: 'tensor', t: bf, v3: true }], ['a', T(a)]])));
    const sd = await readStateDict(p);
    expect(sd.get('w')).toEqual(bf);
    expect(Array.from(sd.get('a')!.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
  });

  it('reads a byte range of a stored entry', async () => {
    const p = join(tmp, 'range.zip');
    await writePieces(p, buildZip([{ name: 'x/y.bin', data: Uint8Array.from({ length: 100 }, (_, i) => i) }]));
    const z = await ZipReader.open(p);
    expect(Array.from(await z.read('x/y.bin', 10, 5))).toEqual([10, 11, 12, 13, 14]);
    await expect(z.read('x/y.bin', 98, 5)).rejects.toThrow(/outside entry/);
    await z.close();
  });
});

describe('streaming reads', () => {
  it('read() of one tensor reads only its storage', async () => {
    const big = f32([256, 1024], (i) => i % 97); // 1 MiB
    const other = f32([512, 1024], (i) => -i); // 2 MiB
    const p = join(tmp, 'stream.pt');
    await torchSave(p, odict(new Map<PyVal, PyVal>([['a', T(big)], ['b', T(other)]])));
    const ck = await loadTorchCheckpoint(p);
    expect(ck.storageBytesRead).toBe(0); // opening parses only the pickle
    const t = await ck.read('a');
    expect(t.shape).toEqual([256, 1024]);
    expect((t.data as Float32Array)[98]).toBe(1);
    // the 1 MiB of 'a' plus one 30-byte local header; none of the 2 MiB of 'b'
    expect(ck.storageBytesRead).toBe(256 * 1024 * 4 + 30);
    await ck.close();
  });

  it('a view reads only the span it covers, and honours offset and strides', async () => {
    const base = f32([100, 50], (i) => i);
    const p = join(tmp, 'view.pt');
    await torchSave(p, new Map<PyVal, PyVal>([
      ['base', T(base)],
      ['v', { kind: 'tensor', t: base, view: { base, offset: 50 * 10 + 3, shape: [4, 2], stride: [1, 50] } }],
    ]));
    const ck = await loadTorchCheckpoint(p);
    const v = await ck.read('v');
    expect(Array.from(v.data as Float32Array)).toEqual([503, 553, 504, 554, 505, 555, 506, 556]);
    expect(ck.storageBytesRead).toBe((50 + 4) * 4 + 30); // span [503, 556] only
    await ck.close();
  });
});

describe('errors name the file and the problem', () => {
  it('not a checkpoint', async () => {
    const p = join(tmp, 'text.pt');
    writeFileSync(p, 'hello, I am not a checkpoint\n');
    await expect(loadTorchCheckpoint(p)).rejects.toThrow(new RegExp(`${p.replace(/[.]/g, '\\.')}: not a PyTorch checkpoint`));
    const e = join(tmp, 'empty.pt');
    writeFileSync(e, '');
    await expect(loadTorchCheckpoint(e)).rejects.toThrow(/empty file/);
    await expect(loadTorchCheckpoint(join(tmp, 'missing.pt'))).rejects.toThrow(/missing\.pt: cannot open/);
  });

  it('truncated zip', async () => {
    const p = join(tmp, 'full.pt');
    await torchSave(p, odict(new Map<PyVal, PyVal>([['a', T(f32([64], (i) => i))]])));
    const bytes = readFileSync(p);
    const cut = join(tmp, 'cut.pt');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 40));
    await expect(loadTorchCheckpoint(cut)).rejects.toThrow(/cut\.pt: .*truncated/);
  });

  it('unknown pickle opcode', async () => {
    const { pieces, size } = buildZip([{ name: 'archive/data.pkl', data: Uint8Array.from([0x80, 2, 0xff, 0x2e]) }]);
    const p = join(tmp, 'badop.pt');
    await writePieces(p, { pieces, size });
    await expect(loadTorchCheckpoint(p)).rejects.toThrow(/badop\.pt:archive\/data\.pkl: unknown pickle opcode 0xff at byte 2/);
  });

  it('missing storage record', async () => {
    const src = join(tmp, 'ok.pt');
    await torchSave(src, odict(new Map<PyVal, PyVal>([['a', T(f32([4], (i) => i))]])));
    const z = await ZipReader.open(src);
    const pkl = await z.read('archive/data.pkl');
    await z.close();
    const p = join(tmp, 'nostorage.pt');
    await writePieces(p, buildZip([{ name: 'archive/data.pkl', data: pkl }]));
    await expect(loadTorchCheckpoint(p)).rejects.toThrow(/nostorage\.pt: missing storage record "archive\/data\/0"/);
  });

  it('unknown tensor name', async () => {
    const ck = await loadTorchCheckpoint(join(FIXTURES, 'torchload/dtypes/weights.pt'));
    await expect(ck.read('nope')).rejects.toThrow(/no tensor named "nope" \(10 tensors/);
    await ck.close();
  });
});

describe('unpickler', () => {
  it('never executes: any global becomes an inert object with its state', () => {
    // cos\nsystem\n(S'echo hi'\ntR. : the classic exploit pickle
    const evil = Buffer.from("cos\nsystem\n(S'echo hi'\ntR.", 'latin1');
    const v = unpickle(evil).value as PyObject;
    expect(v).toBeInstanceOf(PyObject);
    expect(v.cls.qualname).toBe('os.system');
    expect(v.args).toEqual(['echo hi']);
  });

  it('protocol 4 opcodes: FRAME, MEMOIZE, SHORT_BINUNICODE, LONG1, SHORT_BINBYTES, EMPTY_SET/ADDITEMS, int keys', () => {
    // python3: pickle.dumps({'a': [1, 2**70, -1.5, None, True], 'b': ('x', 'x'), 'c': b'\x00\x01', 's': {1, 2},
    //                        'k': {3: 'three'}}, protocol=4)
    const bytes = Buffer.from('80049557000000000000007d94288c0161945d94284b018a0900000000000000004047bff800000000' +
      '00004e88658c0162948c017894680486948c01639443020001948c0173948f94284b014b02908c016b947d944b038c05746872656594' +
      '73752e', 'hex');
    const v = unpickle(bytes).value as Map<string, unknown>;
    expect(getField(v, 'a.0')).toBe(1);
    expect(getField(v, 'a.1')).toBe(2n ** 70n);
    expect(getField(v, 'a.2')).toBe(-1.5);
    expect(getField(v, 'a.3')).toBe(null);
    expect(getField(v, 'a.4')).toBe(true);
    expect(getField(v, 'b')).toEqual(['x', 'x']);
    expect(Array.from(getField(v, 'c') as Uint8Array)).toEqual([0, 1]);
    expect([...(getField(v, 's') as Set<number>)]).toEqual([1, 2]);
    expect(getField(v, 'k.3')).toBe('three');
  });

  it('STACK_GLOBAL: an unknown dict subclass keeps its items', () => {
    // python3: pickle.dumps(collections.OrderedDict([('x', 1), ('y', [2])]), protocol=4), unpickled with no
    // known globals (the torch reader maps OrderedDict to a Map; here it stays an inert object)
    const bytes = Buffer.from('80049533000000000000008c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493' +
      '94295294288c0178944b018c0179945d944b0261752e', 'hex');
    const v = unpickle(bytes).value as PyObject;
    expect(v.cls.qualname).toBe('collections.OrderedDict');
    expect(getField(v, 'x')).toBe(1);
    expect(getField(v, 'y.0')).toBe(2);
  });
});
