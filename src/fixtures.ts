/**
 * Reference fixture cases (see tests/fixtures/FORMAT.md): case.json + tensors.safetensors + weights.pt.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../convert/safetensors.js';
import { loadTorchCheckpoint, stateDictRoot } from '../convert/torch.js';
import { numel, shapeStr, toFloat64, type HostTensor } from './hosttensor.js';
import { ReplayNoise } from './noise.js';
import { Params } from './params.js';

export interface Tolerance { max_abs: number; rel_l2: number }

export interface CodeMatch {
  margin_tensor?: string;
  exact_above_margin?: number;
  max_mismatches?: number;
}

export interface CaseJson {
  stage: string;
  reference?: string;
  config?: Record<string, unknown>;
  weights?: string | null;
  weights_prefix?: string;
  inputs?: Record<string, string>;
  outputs: Record<string, string>;
  intermediates?: Record<string, string>;
  noise?: string[];
  tolerance: Tolerance | Record<string, Tolerance>;
  code_match?: CodeMatch;
  scalars?: Record<string, unknown>;
  [k: string]: unknown;
}

/** What a stage read of its case (filled as it runs; the parity runner checks it against what the case declares). */
export interface CaseReads {
  /** case.json `inputs` argument names read through `input()` */
  inputs: Set<string>;
  /** tensor names read through `t()` / `input()` */
  tensors: Set<string>;
  /** dotted paths of the `config` / `scalars` leaves read through `config` / `scalars` */
  config: Set<string>;
  scalars: Set<string>;
  weights: boolean;
  /** every ReplayNoise handed out by `replayNoise()` */
  noises: ReplayNoise[];
}

export interface FixtureCase {
  dir: string;
  name: string;
  json: CaseJson;
  tensors: Map<string, HostTensor>;
  /** a tensor of tensors.safetensors by name (throws naming the case if absent) */
  t(name: string): HostTensor;
  /** the tensor of case.json `inputs[arg]` (throws naming the argument if the case does not declare it) */
  input(arg: string): HostTensor;
  /** the argument names of case.json `inputs`, in file order */
  inputNames(): string[];
  /** case.json `config` / `scalars` ({} when absent); every leaf read through them is recorded in `reads` */
  config: Record<string, unknown>;
  scalars: Record<string, unknown>;
  /** the whole state dict of weights.pt (names relative to the container's state-dict root), with
   *  `Params.prefix` set to case.json weights_prefix */
  weights(): Promise<Params>;
  /** path of weights.pt, for a stage that reads the container itself (torch.load) */
  weightsFile(): string;
  /** the recorded noise draws (case.json "noise" order, else every `noise.*` tensor in numeric order) */
  noise(): HostTensor[];
  /** the recorded draws as a NoiseSource; the runner checks that every draw of it was consumed */
  replayNoise(): ReplayNoise;
  readonly reads: CaseReads;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);

/** A read-only view of a JSON object that records the dotted path of every leaf read (nested objects are views). */
function tracked(obj: Record<string, unknown>, prefix: string, sink: Set<string>): Record<string, unknown> {
  return new Proxy(obj, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      if (typeof key !== 'string' || !Object.prototype.hasOwnProperty.call(target, key)) return v;
      const path = prefix ? `${prefix}.${key}` : key;
      if (isPlainObject(v) && Object.keys(v).length) return tracked(v, path, sink);
      sink.add(path);
      return v;
    },
    set() { throw new Error('fixture config / scalars are read-only'); },
  });
}

/** Dotted paths of every leaf of a JSON object (arrays, primitives and empty objects are leaves). */
export function leafPaths(obj: Record<string, unknown> | undefined, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj ?? {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isPlainObject(v) && Object.keys(v).length) out.push(...leafPaths(v, path));
    else out.push(path);
  }
  return out;
}

export async function loadCase(dir: string): Promise<FixtureCase> {
  const json = JSON.parse(await readFile(join(dir, 'case.json'), 'utf8')) as CaseJson;
  const tpath = join(dir, 'tensors.safetensors');
  const tensors = existsSync(tpath) ? await readSafetensors(tpath) : new Map<string, HostTensor>();
  const name = dir.split('/').filter(Boolean).slice(-1)[0] ?? dir;
  let cachedWeights: Params | null = null;
  const reads: CaseReads = { inputs: new Set(), tensors: new Set(), config: new Set(), scalars: new Set(), weights: false, noises: [] };
  const c: FixtureCase = {
    dir, name, json, tensors, reads,
    config: tracked(json.config ?? {}, '', reads.config),
    scalars: tracked(json.scalars ?? {}, '', reads.scalars),
    t(n: string): HostTensor {
      const v = tensors.get(n);
      if (!v) throw new Error(`fixture ${name}: no tensor "${n}" in tensors.safetensors`);
      reads.tensors.add(n);
      return v;
    },
    input(arg: string): HostTensor {
      const tname = json.inputs?.[arg];
      if (tname === undefined) throw new Error(`fixture ${name}: case.json declares no input "${arg}"`);
      reads.inputs.add(arg);
      return c.t(tname);
    },
    inputNames(): string[] {
      return Object.keys(json.inputs ?? {});
    },
    weightsFile(): string {
      if (!json.weights) throw new Error(`fixture ${name}: case has no weights`);
      reads.weights = true;
      return join(dir, json.weights);
    },
    async weights(): Promise<Params> {
      reads.weights = true;
      if (cachedWeights) return cachedWeights;
      if (!json.weights) throw new Error(`fixture ${name}: case has no weights`);
      const ckpt = await loadTorchCheckpoint(join(dir, json.weights));
      try {
        const root = stateDictRoot(ckpt);
        const map = new Map<string, HostTensor>();
        for (const info of ckpt.tensors()) {
          if (!info.name.startsWith(root)) continue;
          map.set(info.name.slice(root.length), await ckpt.read(info.name));
        }
        cachedWeights = new Params(map, json.weights_prefix ?? '', `${name}/${json.weights}`);
        return cachedWeights;
      } finally {
        await ckpt.close();
      }
    },
    noise(): HostTensor[] {
      const names = json.noise ?? [...tensors.keys()].filter((k) => k.startsWith('noise.'))
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
      return names.map((n) => c.t(n));
    },
    replayNoise(): ReplayNoise {
      const r = new ReplayNoise(c.noise(), `${name} noise`);
      reads.noises.push(r);
      return r;
    },
  };
  return c;
}

export interface Comparison {
  name: string;
  pass: boolean;
  maxAbs: number;
  relL2: number;
  detail?: string;
  /** set by the parity runner: a declared output or a declared intermediate */
  kind?: 'output' | 'intermediate';
}

const INT_DTYPES = new Set(['int64', 'int32', 'int16', 'int8', 'uint8', 'bool']);

/** Compare one output against its reference: floats within tol (max_abs AND rel_l2), integers exactly
 *  (or per the case's code_match rule, which allows a few near-tie frames to differ). */
export function compareTensor(
  name: string,
  out: HostTensor,
  ref: HostTensor,
  tol: Tolerance,
  codeMatch?: { rule: CodeMatch; margin?: HostTensor },
): Comparison {
  if (out.shape.length !== ref.shape.length || out.shape.some((d, i) => d !== ref.shape[i])) {
    return { name, pass: false, maxAbs: NaN, relL2: NaN, detail: `shape ${shapeStr(out.shape)} != reference ${shapeStr(ref.shape)}` };
  }
  const a = toFloat64(out);
  const b = toFloat64(ref);
  let maxAbs = 0, num = 0, den = 0, mism = 0, mismHigh = 0;
  const margin = codeMatch?.margin ? toFloat64(codeMatch.margin) : null;
  const thr = codeMatch?.rule.exact_above_margin ?? Infinity;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= maxAbs)) maxAbs = d; // NaN propagates
    num += d * d;
    den += b[i]! * b[i]!;
    if (d !== 0) {
      mism++;
      if (!margin || !(margin[i]! < thr)) mismHigh++;
    }
  }
  const relL2 = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  if (INT_DTYPES.has(ref.dtype)) {
    if (codeMatch) {
      const maxMis = codeMatch.rule.max_mismatches ?? 0;
      const pass = mismHigh === 0 && mism <= maxMis;
      return { name, pass, maxAbs, relL2, detail: `${mism}/${numel(ref.shape)} codes differ (${mismHigh} above the margin; ≤ ${maxMis} low-margin allowed)` };
    }
    return { name, pass: mism === 0, maxAbs, relL2, detail: mism ? `${mism}/${numel(ref.shape)} values differ` : undefined };
  }
  const pass = maxAbs <= tol.max_abs && relL2 <= tol.rel_l2;
  return { name, pass, maxAbs, relL2 };
}

/** tolerance for one output name (case tolerance may be global or per output) */
export function toleranceFor(json: CaseJson, outName: string): Tolerance {
  const t = json.tolerance as Record<string, unknown>;
  if (typeof t.max_abs === 'number') return t as unknown as Tolerance;
  const per = (t[outName] ?? t[outName.replace(/^out\./, '')]) as Tolerance | undefined;
  if (!per) throw new Error(`no tolerance for ${outName}`);
  return per;
}
