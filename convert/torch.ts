/**
 * PyTorch checkpoint reader (torch.save files), streamed: the pickle is parsed without executing anything
 * (convert/pickle.ts) and each tensor's storage bytes are read from the file only when asked for, so memory is
 * bounded by the largest tensor even for 5 GB checkpoints.
 *
 * Formats:
 *  - zip (torch >= 1.6 default): `<root>/data.pkl` + `<root>/data/<key>` storage records (+ `<root>/version`,
 *    `<root>/byteorder`). The root folder name varies (`archive`, `weights`, `weights.pt`, ...): it is taken from
 *    the archive. zip64 and deflated records are supported by convert/zip.ts.
 *  - legacy (torch < 1.6, `_use_new_zipfile_serialization=False`): magic number, protocol version and sys-info
 *    pickles, the object pickle, the storage-key list pickle, then each storage as an int64 element count
 *    followed by its raw bytes. Supported (storages are located by walking their headers, not read).
 *  - the pre-1.0 tar format is refused.
 *
 * The unpickled tree (`root`): dicts (dict, OrderedDict, defaultdict) are `Map`s, lists and tuples are Arrays,
 * tensors and nn.Parameters are `TorchTensor` records (storage reference + offset/shape/stride, no data),
 * unknown classes (omegaconf DictConfig, argparse.Namespace, ...) are inert `PyObject`s (see pickle.ts;
 * `getField(root, 'cfg.model.encoder_dim')` reads through them).
 *
 * Tensor names: the path of container keys from the root joined with '.', list/tuple indices and int dict keys
 * written as decimal numbers (e.g. `state_dict.first_stage_model.decoder.conv_in.weight`, `model.xxx` in a
 * fairseq checkpoint, `optimizer_states.0.state.0.exp_avg`). Inside an inert object the path continues through
 * its attribute dict / dict items / list items.
 *
 * Finding the state-dict prefix: `stateDictRoot(ckpt)` returns '' for a plain state dict, 'state_dict.' for a
 * Lightning-style {state_dict: ...} container, 'model.' for a fairseq {model: ..., cfg/args: ...} checkpoint.
 * A fixture's case.json `weights_prefix` is relative to that root, so a test reads its weights with
 * `readStateDict(path, stateDictRoot(ckpt) + weights_prefix)`, or simply `readFixtureWeights(path, weights_prefix)`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { bytesPerElement, numel, shapeStr, type DType, type HostTensor } from '../src/hosttensor.js';
import { typedFromBytes } from './safetensors.js';
import { PickleTruncatedError, PyClass, PyFunction, PyObject, describe, getField, makeTuple, unpickle } from './pickle.js';
import { ZipReader, readExact } from './zip.js';

/** torch storage class name -> element dtype */
const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32', DoubleStorage: 'float64', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', UntypedStorage: 'uint8',
};

/** torch dtype object name (pickled as the global torch.<name>) -> element dtype */
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'float32', float: 'float32', float64: 'float64', double: 'float64', float16: 'float16', half: 'float16',
  bfloat16: 'bfloat16', int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16',
  int8: 'int8', uint8: 'uint8', bool: 'bool',
};

/** A reference to one storage record of the file. */
export interface StorageRef {
  key: string;
  /** undefined when the storage type is not one we can represent (e.g. complex); reading it then fails */
  dtype: DType | undefined;
  storageType: string;
  location: string;
  /** element count recorded in the pickle */
  numel: number;
  /** legacy storage views: element offset into the root storage */
  elementOffset: number;
}

/** A tensor as recorded in the pickle: where its data is, not the data. */
export class TorchTensor {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
    public requiresGrad: boolean,
    public isParameter = false,
  ) {}
  get dtype(): DType | undefined { return this.storage.dtype; }
  toString(): string { return `tensor(${this.storage.storageType}, ${shapeStr(this.shape)})`; }
}

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  stride: number[];
  storageOffset: number;
  storageKey: string;
  tensor: TorchTensor;
}

function toInt(x: unknown, what: string): number {
  if (typeof x === 'number' && Number.isInteger(x)) return x;
  if (typeof x === 'bigint' && x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= BigInt(Number.MIN_SAFE_INTEGER)) return Number(x);
  throw new Error(`${what}: expected an integer, got ${describe(x)}`);
}

function intList(x: unknown, what: string): number[] {
  if (!Array.isArray(x)) throw new Error(`${what}: expected a tuple, got ${describe(x)}`);
  return x.map((v) => toInt(v, what));
}

function rebuildTensor(args: unknown[], fn: string): TorchTensor {
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!storage || typeof storage !== 'object' || !('key' in storage)) {
    throw new Error(`${fn}: first argument is not a storage (${describe(storage)})`);
  }
  const shape = intList(size, `${fn} size`);
  const strides = intList(stride, `${fn} stride`);
  if (strides.length !== shape.length) throw new Error(`${fn}: stride ${shapeStr(strides)} does not match size ${shapeStr(shape)}`);
  return new TorchTensor(storage as StorageRef, toInt(offset, `${fn} storage_offset`), shape, strides, requiresGrad === true);
}

function mapFrom(args: unknown[]): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  const src = args[0];
  if (src instanceof Map) for (const [k, v] of src) m.set(k, v);
  else if (Array.isArray(src)) for (const kv of src) if (Array.isArray(kv) && kv.length === 2) m.set(kv[0], kv[1]);
  return m;
}

/** The only globals that are given behaviour; everything else unpickles to an inert PyObject. */
function torchGlobals(module: string, name: string): PyFunction | undefined {
  const q = `${module}.${name}`;
  switch (q) {
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor':
      return new PyFunction(module, name, (a) => rebuildTensor(a, q));
    case 'torch._utils._rebuild_tensor_v3': // (storage, offset, size, stride, requires_grad, hooks, dtype, metadata)
      return new PyFunction(module, name, (a) => {
        const t = rebuildTensor(a, q);
        const d = a[6] instanceof PyClass && a[6].module === 'torch' ? TORCH_DTYPES[a[6].name] : undefined;
        const storage = { ...t.storage, dtype: d, storageType: a[6] instanceof PyClass ? `${t.storage.storageType}(${a[6].name})` : t.storage.storageType };
        return new TorchTensor(storage, t.storageOffset, t.shape, t.stride, t.requiresGrad);
      });
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return new PyFunction(module, name, (a) => {
        const t = a[0];
        if (t instanceof TorchTensor) { t.isParameter = true; t.requiresGrad = a[1] === true; }
        return t;
      });
    case 'torch._tensor._rebuild_from_type_v2': // (func, new_type, args, state): a tensor subclass; keep the tensor
    case 'torch._tensor._rebuild_from_type':
      return new PyFunction(module, name, (a) => {
        const [fn, , args] = a;
        if (fn instanceof PyFunction && Array.isArray(args)) return fn.call(args);
        return new PyObject(new PyClass(module, name), a);
      });
    case 'torch.Size':
      return new PyFunction(module, name, (a) => makeTuple(Array.isArray(a[0]) ? [...a[0]] : []));
    case 'collections.OrderedDict':
    case 'builtins.dict':
    case '__builtin__.dict':
      return new PyFunction(module, name, mapFrom);
    case 'collections.defaultdict':
      return new PyFunction(module, name, () => new Map());
    case 'builtins.set': case '__builtin__.set': case 'builtins.frozenset': case '__builtin__.frozenset':
      return new PyFunction(module, name, (a) => new Set(Array.isArray(a[0]) ? a[0] : []));
    case 'builtins.list': case '__builtin__.list':
      return new PyFunction(module, name, (a) => (Array.isArray(a[0]) ? [...a[0]] : []));
    case 'builtins.tuple': case '__builtin__.tuple':
      return new PyFunction(module, name, (a) => makeTuple(Array.isArray(a[0]) ? [...a[0]] : []));
    case 'builtins.bytearray': case '__builtin__.bytearray':
    case 'builtins.bytes': case '__builtin__.bytes':
      return new PyFunction(module, name, (a) => (a[0] instanceof Uint8Array ? a[0] : new Uint8Array(0)));
    case '_codecs.encode': // protocol-2 bytes: _codecs.encode(str, 'latin1')
      return new PyFunction(module, name, (a) => {
        const s = typeof a[0] === 'string' ? a[0] : '';
        return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
      });
    default:
      return undefined;
  }
}

function storageRefFromPid(pid: unknown, src: string): { ref: StorageRef; viewOf?: { key: string } } {
  if (!Array.isArray(pid) || pid[0] !== 'storage') throw new Error(`${src}: unsupported persistent id ${describe(pid)}`);
  const [, type, key, location, n, view] = pid as unknown[];
  const typeName = type instanceof PyClass ? type.name : type instanceof PyFunction ? type.name : String(type);
  const ref: StorageRef = {
    key: String(key),
    dtype: STORAGE_DTYPES[typeName],
    storageType: typeName,
    location: String(location),
    numel: toInt(n, `${src}: storage size`),
    elementOffset: 0,
  };
  if (Array.isArray(view) && view.length === 3) {
    // legacy storage view: (view_key, offset, view_size) of root storage `key`
    return { ref: { ...ref, key: String(key), elementOffset: toInt(view[1], 'view offset'), numel: toInt(view[2], 'view size') } };
  }
  return { ref };
}

interface StorageBackend {
  /** total bytes of a storage record */
  byteLength(key: string): number;
  read(key: string, start: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
  /** bytes of storage data read so far */
  bytesRead(): number;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i]!;
  }
  return true;
}

export class TorchCheckpoint {
  private index: Map<string, TensorEntry> | undefined;
  /** Tensors whose storage type has no HostTensor dtype (complex, quantized...): listed by name, not readable. */
  readonly unsupported: Array<{ name: string; storageType: string }> = [];

  constructor(
    readonly path: string,
    readonly format: 'zip' | 'legacy',
    /** the unpickled object (see the file comment for the JS representation) */
    readonly root: unknown,
    private backend: StorageBackend | null,
    /** zip root folder (e.g. "archive"), '' for legacy files */
    readonly archiveRoot: string,
  ) {}

  /** Every tensor reachable from the root, in pickle order, with its dotted name. */
  tensors(): TensorEntry[] {
    return [...this.entries().values()];
  }

  has(name: string): boolean {
    return this.entries().has(name);
  }

  info(name: string): TensorEntry {
    const e = this.entries().get(name);
    if (!e) {
      const names = [...this.entries().keys()];
      throw new Error(`${this.path}: no tensor named "${name}" (${names.length} tensors${names.length ? `, e.g. ${names.slice(0, 3).join(', ')}` : ''})`);
    }
    return e;
  }

  /** A non-tensor field, e.g. field('cfg.model.encoder_dim') (reads through omegaconf / plain objects). */
  field(path: string): unknown {
    return getField(this.root, path);
  }

  private entries(): Map<string, TensorEntry> {
    if (this.index) return this.index;
    const index = new Map<string, TensorEntry>();
    const ancestors = new Set<unknown>();
    const visit = (x: unknown, path: string): void => {
      if (x instanceof TorchTensor) {
        if (x.dtype === undefined) { this.unsupported.push({ name: path, storageType: x.storage.storageType }); return; }
        index.set(path, {
          name: path, dtype: x.dtype, shape: x.shape, stride: x.stride, storageOffset: x.storageOffset,
          storageKey: x.storage.key, tensor: x,
        });
        return;
      }
      if (x === null || typeof x !== 'object' || ancestors.has(x)) return;
      const join = (k: unknown): string => (path === '' ? String(k) : `${path}.${String(k)}`);
      ancestors.add(x);
      if (x instanceof Map) {
        for (const [k, v] of x) visit(v, join(k));
      } else if (Array.isArray(x)) {
        x.forEach((v, i) => visit(v, join(i)));
      } else if (x instanceof PyObject) {
        const st = x.state;
        if (st instanceof Map) for (const [k, v] of st) visit(v, join(k));
        else if (Array.isArray(st)) for (const s of st) { if (s instanceof Map) for (const [k, v] of s) visit(v, join(k)); }
        else if (st === undefined && x.args.length) x.args.forEach((v, i) => visit(v, join(i)));
        if (x.dictItems) for (const [k, v] of x.dictItems) visit(v, join(k));
        if (x.listItems) x.listItems.forEach((v, i) => visit(v, join(i)));
      }
      ancestors.delete(x);
    };
    visit(this.root, '');
    this.index = index;
    return index;
  }

  /**
   * Read one tensor: only its storage bytes (the span its offset/strides cover) are read from the file; a
   * non-contiguous view is materialised row-major. float16/bfloat16 come back as raw bits (see HostTensor).
   */
  async read(name: string): Promise<HostTensor> {
    if (!this.backend) throw new Error(`${this.path}: checkpoint is closed`);
    const e = this.info(name);
    const dtype = e.dtype;
    const es = bytesPerElement(dtype);
    const n = numel(e.shape);
    const shape = [...e.shape];
    if (n === 0) return { dtype, shape, data: typedFromBytes(dtype, new Uint8Array(0)) };
    const st = e.tensor.storage;
    const base = st.elementOffset + e.storageOffset;
    let last = base;
    for (let i = 0; i < shape.length; i++) {
      if (e.stride[i]! < 0) throw new Error(`${this.path}: tensor "${name}" has a negative stride`);
      last += (shape[i]! - 1) * e.stride[i]!;
    }
    const avail = this.backend.byteLength(st.key) / es;
    if (last + 1 > avail) {
      throw new Error(`${this.path}: tensor "${name}" ${shapeStr(shape)} at storage offset ${base} needs ${last + 1} elements ` +
        `but storage "${st.key}" holds ${avail}`);
    }
    if (isContiguous(shape, e.stride)) {
      const bytes = await this.backend.read(st.key, base * es, n * es);
      return { dtype, shape, data: typedFromBytes(dtype, bytes) };
    }
    const spanBytes = await this.backend.read(st.key, base * es, (last - base + 1) * es);
    const src = typedFromBytes(dtype, spanBytes) as unknown as { [i: number]: number | bigint; length: number };
    const out = typedFromBytes(dtype, new Uint8Array(n * es)) as unknown as { [i: number]: number | bigint };
    // odometer over the index space, row-major
    const nd = shape.length;
    const idx = new Array<number>(nd).fill(0);
    let off = 0;
    for (let i = 0; i < n; i++) {
      out[i] = src[off]!;
      for (let d = nd - 1; d >= 0; d--) {
        if (++idx[d]! < shape[d]!) { off += e.stride[d]!; break; }
        off -= (shape[d]! - 1) * e.stride[d]!;
        idx[d] = 0;
      }
    }
    return { dtype, shape, data: out as unknown as HostTensor['data'] };
  }

  /** Bytes of tensor data (plus zip local headers) read from the file so far: shows that reads are selective. */
  get storageBytesRead(): number {
    return this.backend?.bytesRead() ?? 0;
  }

  async close(): Promise<void> {
    if (this.backend) { await this.backend.close(); this.backend = null; }
  }
}

/** Open a torch.save file (zip or legacy format) and parse its pickle; no tensor data is read yet. */
export async function loadTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new Error(`${path}: cannot open (${(e as Error).message})`);
  }
  try {
    const size = (await fh.stat()).size;
    if (size === 0) throw new Error(`${path}: empty file (not a PyTorch checkpoint)`);
    if (await ZipReader.looksLikeZip(fh)) return await loadZip(fh, path);
    const head = await readExact(fh, 0, Math.min(size, 512), 'the file header');
    if (head[0] === 0x80) return await loadLegacy(fh, path, size);
    if (size >= 262 && new TextDecoder('latin1').decode(head.subarray(257, 262)) === 'ustar') {
      throw new Error(`${path}: a pre-1.0 tar-format torch.save file; this format is not supported (re-save it with a recent torch)`);
    }
    throw new Error(`${path}: not a PyTorch checkpoint (neither a zip archive nor a legacy pickle file)`);
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

async function loadZip(fh: FileHandle, path: string): Promise<TorchCheckpoint> {
  const zip = await ZipReader.fromHandle(fh, path, true);
  const pkl = zip.names().find((n) => /^[^/]+\/data\.pkl$/.test(n)) ?? zip.names().find((n) => n.endsWith('data.pkl'));
  if (!pkl) throw new Error(`${path}: zip archive without a data.pkl record (not a torch.save file)`);
  const root = pkl.slice(0, pkl.length - 'data.pkl'.length); // "archive/" (with the slash) or ''
  const bo = `${root}byteorder`;
  if (zip.has(bo)) {
    const order = new TextDecoder().decode(await zip.read(bo)).trim();
    if (order !== 'little') throw new Error(`${path}: byteorder "${order}" is not supported (only little-endian)`);
  }
  const src = `${path}:${pkl}`;
  const value = unpickle(await zip.read(pkl), {
    source: src,
    findGlobal: torchGlobals,
    persistentLoad: (pid) => {
      const { ref } = storageRefFromPid(pid, src);
      if (!zip.has(`${root}data/${ref.key}`)) throw new Error(`${path}: missing storage record "${root}data/${ref.key}"`);
      return ref;
    },
  }).value;
  const pklBytes = zip.bytesRead;
  const backend: StorageBackend = {
    byteLength: (key) => zip.entry(`${root}data/${key}`).size,
    read: (key, start, length) => zip.read(`${root}data/${key}`, start, length),
    close: () => zip.close(),
    bytesRead: () => zip.bytesRead - pklBytes,
  };
  return new TorchCheckpoint(path, 'zip', value, backend, root.replace(/\/$/, ''));
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

async function loadLegacy(fh: FileHandle, path: string, size: number): Promise<TorchCheckpoint> {
  const refs = new Map<string, StorageRef>();
  const opts = {
    source: path,
    findGlobal: torchGlobals,
    persistentLoad: (pid: unknown) => {
      const { ref } = storageRefFromPid(pid, path);
      if (!refs.has(ref.key)) refs.set(ref.key, ref);
      return ref;
    },
  };
  // Parse the five leading pickles from a growing prefix of the file.
  let len = Math.min(size, 1 << 20);
  let values: unknown[] = [];
  let end = 0;
  for (;;) {
    const buf = await readExact(fh, 0, len, 'the legacy header');
    try {
      values = [];
      refs.clear();
      let off = 0;
      for (let i = 0; i < 5; i++) {
        const r = unpickle(buf, { ...opts, source: `${path} (legacy pickle ${i + 1})` }, off);
        values.push(r.value);
        off = r.end;
        if (i === 0 && r.value !== Number(LEGACY_MAGIC) && r.value !== LEGACY_MAGIC) {
          throw new Error(`${path}: not a PyTorch checkpoint (a pickle file without torch's legacy magic number)`);
        }
      }
      end = off;
      break;
    } catch (e) {
      if (e instanceof PickleTruncatedError && len < size) { len = Math.min(size, len * 4); continue; }
      if (e instanceof PickleTruncatedError) throw new Error(`${path}: legacy torch file is truncated (${(e as Error).message})`);
      throw e;
    }
  }
  const keys = values[4];
  if (!Array.isArray(keys)) throw new Error(`${path}: legacy storage key list is not a list`);
  // Walk the storage records: int64 element count, then the raw bytes.
  const where = new Map<string, { offset: number; bytes: number }>();
  let legacyRead = 0;
  let pos = end;
  for (const k of keys) {
    const key = String(k);
    const ref = refs.get(key);
    if (!ref) throw new Error(`${path}: storage "${key}" is listed but never referenced`);
    if (pos + 8 > size) throw new Error(`${path}: legacy file truncated at storage "${key}"`);
    const hdr = await readExact(fh, pos, 8, `the header of storage "${key}"`);
    const count = Number(new DataView(hdr.buffer).getBigInt64(0, true));
    const es = ref.dtype ? bytesPerElement(ref.dtype) : 1;
    if (pos + 8 + count * es > size) throw new Error(`${path}: legacy file truncated in storage "${key}"`);
    where.set(key, { offset: pos + 8, bytes: count * es });
    pos += 8 + count * es;
  }
  const backend: StorageBackend = {
    byteLength: (key) => {
      const w = where.get(key);
      if (!w) throw new Error(`${path}: missing storage record "${key}"`);
      return w.bytes;
    },
    read: (key, start, length) => { legacyRead += length; return readExact(fh, where.get(key)!.offset + start, length, `storage "${key}"`); },
    close: () => fh.close(),
    bytesRead: () => legacyRead,
  };
  return new TorchCheckpoint(path, 'legacy', values[3], backend, '');
}

/**
 * Where the state dict sits in a checkpoint: '' (a plain state dict, e.g. ckpt/mucodec.pt), 'state_dict.'
 * (Lightning-style, e.g. audioldm_48k.pth) or 'model.' (fairseq, e.g. muq_dev/muq.pt).
 */
export function stateDictRoot(ckpt: TorchCheckpoint): string {
  const r = ckpt.root;
  if (!(r instanceof Map)) return '';
  const sd = r.get('state_dict');
  if (sd instanceof Map) return 'state_dict.';
  const m = r.get('model');
  if (m instanceof Map && (r.has('cfg') || r.has('args') || r.has('optimizer_history') || [...r.values()].every((v) => !(v instanceof TorchTensor)))) {
    return 'model.';
  }
  return '';
}

/** Every tensor whose dotted name starts with `prefix`, keyed by the name with the prefix stripped. */
export async function readStateDict(path: string, prefix = ''): Promise<Map<string, HostTensor>> {
  const ckpt = await loadTorchCheckpoint(path);
  try {
    const out = new Map<string, HostTensor>();
    for (const t of ckpt.tensors()) {
      if (t.name.startsWith(prefix)) out.set(t.name.slice(prefix.length), await ckpt.read(t.name));
    }
    return out;
  } finally {
    await ckpt.close();
  }
}

/**
 * A fixture's weights: `weightsPrefix` is case.json `weights_prefix`, relative to the container's state-dict
 * root (stateDictRoot), e.g. readFixtureWeights('.../weights.pt', 'first_stage_model.').
 */
export async function readFixtureWeights(path: string, weightsPrefix = ''): Promise<Map<string, HostTensor>> {
  const ckpt = await loadTorchCheckpoint(path);
  try {
    const prefix = stateDictRoot(ckpt) + weightsPrefix;
    const out = new Map<string, HostTensor>();
    for (const t of ckpt.tensors()) {
      if (t.name.startsWith(prefix)) out.set(t.name.slice(prefix.length), await ckpt.read(t.name));
    }
    return out;
  } finally {
    await ckpt.close();
  }
}
