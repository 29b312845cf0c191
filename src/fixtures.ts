/**
 * Reference fixture cases (see tests/fixtures/FORMAT.md): case.json + tensors.safetensors + weights.pt.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../convert/safetensors.js';
import { loadTorchCheckpoint, stateDictRoot } from '../convert/torch.js';
import { numel, shapeStr, toFloat64, type HostTensor } from './hosttensor.js';
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

export interface FixtureCase {
  dir: string;
  name: string;
  json: CaseJson;
  tensors: Map<string, HostTensor>;
  /** a tensor of tensors.safetensors by name (throws naming the case if absent) */
  t(name: string): HostTensor;
  /** the whole state dict of weights.pt (names relative to the container's state-dict root), with
   *  `Params.prefix` set to case.json weights_prefix */
  weights(): Promise<Params>;
  /** the recorded noise draws (case.json "noise" order, else every `noise.*` tensor in numeric order) */
  noise(): HostTensor[];
}

export async function loadCase(dir: string): Promise<FixtureCase> {
  const json = JSON.parse(await readFile(join(dir, 'case.json'), 'utf8')) as CaseJson;
  const tpath = join(dir, 'tensors.safetensors');
  const tensors = existsSync(tpath) ? await readSafetensors(tpath) : new Map<string, HostTensor>();
  const name = dir.split('/').filter(Boolean).slice(-1)[0] ?? dir;
  let cachedWeights: Params | null = null;
  const c: FixtureCase = {
    dir, name, json, tensors,
    t(n: string): HostTensor {
      const v = tensors.get(n);
      if (!v) throw new Error(`fixture ${name}: no tensor "${n}" in tensors.safetensors`);
      return v;
    },
    async weights(): Promise<Params> {
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
  };
  return c;
}

export interface Comparison {
  name: string;
  pass: boolean;
  maxAbs: number;
  relL2: number;
  detail?: string;
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
