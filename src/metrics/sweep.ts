/**
 * Sampler sweeps: decode one code sequence with every (sampler, steps) combination under one seed, and score each
 * against a reference decode (upstream's Euler at many steps: the ODE solution the cheaper solves approximate) and,
 * when given, against the original audio. Rows are handed out as they finish (`onRow`), so a caller can keep them
 * when the sweep is stopped.
 */
import type { Audio } from '../audio/wav.js';
import type { MuCodec } from '../codec.js';
import { getSolver } from '../sampler/index.js';
import { compareAudio, type Metrics } from './index.js';

export interface SweepOptions {
  samplers: string[];
  steps: number[];
  seed: number;
  /** steps of the reference decode (default 50) and its sampler (default 'euler') */
  refSteps?: number;
  refSampler?: string;
  guidanceScale?: number;
  /** the source audio, when the codes came from it: rows then also hold metrics against it */
  original?: Audio;
  signal?: AbortSignal;
  /** overall fraction done in [0, 1] and what runs now */
  onProgress?: (fraction: number, label: string) => void;
  onRow?: (row: SweepRow, rows: SweepRow[]) => void | Promise<void>;
  /** called once the reference decode is done (before the first row) */
  onReference?: (ref: SweepResult['reference']) => void;
}

export interface SweepRow {
  sampler: string;
  steps: number;
  /** DiT (velocity) evaluations per window: steps × the solver's evaluations per step (a CFG pair is one batched call) */
  dit_evals: number;
  seconds: number;
  vs_reference: Metrics;
  vs_original: Metrics | null;
}

export interface SweepResult {
  reference: { sampler: string; steps: number; dit_evals: number; seconds: number; vs_original: Metrics | null };
  rows: SweepRow[];
}

export function sweepCombinations(samplers: string[], steps: number[]): { sampler: string; steps: number; evals: number }[] {
  if (!samplers.length || !steps.length) throw new Error('sweep: give at least one sampler and one step count');
  for (const s of steps) if (!(Number.isInteger(s) && s >= 1 && s <= 1000)) throw new Error(`sweep: steps "${s}" is not an integer from 1 to 1000`);
  return samplers.flatMap((sampler) => {
    const evals = getSolver(sampler).evals; // throws naming the unknown sampler
    return steps.map((n) => ({ sampler, steps: n, evals: n * evals }));
  });
}

export async function runSweep(codec: MuCodec, codes: Int32Array, o: SweepOptions): Promise<SweepResult> {
  const combos = sweepCombinations(o.samplers, o.steps);
  const refSampler = o.refSampler ?? 'euler', refSteps = o.refSteps ?? 50;
  const refEvals = sweepCombinations([refSampler], [refSteps])[0]!.evals;
  const total = refEvals + combos.reduce((s, c) => s + c.evals, 0);
  let doneUnits = 0;
  const decode = async (sampler: string, steps: number, evals: number): Promise<{ audio: Audio; seconds: number }> => {
    const t0 = performance.now();
    const label = `${sampler} × ${steps}`;
    const audio = await codec.decode(codes, {
      sampler, steps, seed: o.seed, guidanceScale: o.guidanceScale ?? 1.5, signal: o.signal,
      onProgress: (p) => o.onProgress?.((doneUnits + p.fraction * evals) / total, label),
    });
    doneUnits += evals;
    o.onProgress?.(doneUnits / total, label);
    return { audio, seconds: (performance.now() - t0) / 1000 };
  };
  const vsOriginal = (a: Audio): Metrics | null => (o.original ? compareAudio(o.original, a).metrics : null);
  const ref = await decode(refSampler, refSteps, refEvals);
  const result: SweepResult = {
    reference: { sampler: refSampler, steps: refSteps, dit_evals: refEvals, seconds: ref.seconds, vs_original: vsOriginal(ref.audio) },
    rows: [],
  };
  o.onReference?.(result.reference);
  for (const c of combos) {
    const out = await decode(c.sampler, c.steps, c.evals);
    const row: SweepRow = {
      sampler: c.sampler, steps: c.steps, dit_evals: c.evals, seconds: out.seconds,
      vs_reference: compareAudio(ref.audio, out.audio).metrics, vs_original: vsOriginal(out.audio),
    };
    result.rows.push(row);
    await o.onRow?.(row, result.rows);
  }
  return result;
}

const f = (v: number | null, d = 4): string => (v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));

/** the Markdown table of a sweep */
export function sweepTable(r: SweepResult): string {
  const orig = r.rows.some((x) => x.vs_original);
  const head = ['sampler', 'steps', 'DiT evals', 'seconds', 'mel dist', 'STFT dist', 'SI-SDR dB', 'LSD', 'loudness Δ LU'];
  if (orig) head.push('mel dist (orig.)', 'SI-SDR dB (orig.)');
  const lines = [
    `Reference: ${r.reference.sampler} × ${r.reference.steps} steps (${r.reference.dit_evals} DiT evaluations per window, ${r.reference.seconds.toFixed(1)} s); metrics of each row against it${orig ? ', and against the original audio (orig.)' : ''}.`,
    '', `| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
  ];
  for (const x of r.rows) {
    const m = x.vs_reference;
    const cells = [x.sampler, String(x.steps), String(x.dit_evals), x.seconds.toFixed(1), f(m.mel_distance), f(m.stft_distance), f(m.si_sdr_db, 2), f(m.lsd), f(m.loudness_diff_lu, 2)];
    if (orig) cells.push(f(x.vs_original?.mel_distance ?? null), f(x.vs_original?.si_sdr_db ?? null, 2));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
