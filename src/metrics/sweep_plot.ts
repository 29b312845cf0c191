/**
 * The sweep's plot: a metric against DiT evaluations per window (logarithmic axis), one line per sampler; a second
 * panel against the original audio when the sweep has one.
 */
import { Canvas, niceTicks, tickLabel, type RGB } from '../viz/canvas.js';
import type { Metrics } from './index.js';
import type { SweepResult } from './sweep.js';

const COLOURS: RGB[] = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75], [227, 119, 194]];
const BLACK: RGB = [0, 0, 0], GREY: RGB = [120, 120, 120], LIGHT: RGB = [225, 225, 225];
const PW = 460, PH = 300, LEFT = 70, TOP = 60;

export interface SweepPlot { png: Buffer; width: number; height: number; panels: { x: number; y: number; w: number; h: number }[] }

interface Series { name: string; points: [number, number][] }

function panel(cv: Canvas, x0: number, title: string, series: Series[]): void {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const lx0 = Math.log2(Math.min(...xs)), lx1 = Math.log2(Math.max(...xs));
  const xLo = lx1 > lx0 ? lx0 - 0.1 * (lx1 - lx0) : lx0 - 1, xHi = lx1 > lx0 ? lx1 + 0.1 * (lx1 - lx0) : lx0 + 1;
  const yMin = ys.length ? Math.min(0, ...ys) : 0, yMax0 = ys.length ? Math.max(...ys) : 1;
  const yMax = yMax0 > yMin ? yMax0 * 1.08 : yMin + 1;
  const px = (v: number): number => x0 + ((Math.log2(v) - xLo) / (xHi - xLo)) * (PW - 1);
  const py = (v: number): number => TOP + PH - 1 - ((v - yMin) / (yMax - yMin)) * (PH - 1);
  cv.text(x0, TOP - 22, title, BLACK, 2);
  const yt = niceTicks(yMin, yMax, 5), ys0 = yt.length > 1 ? yt[1]! - yt[0]! : 1;
  for (const v of yt) {
    cv.line(x0, py(v), x0 + PW - 1, py(v), LIGHT);
    cv.text(x0 - 6, py(v) - 3, tickLabel(v, ys0), BLACK, 1, 'right');
  }
  const xticks = [...new Set(xs)].sort((a, b) => a - b);
  for (const v of xticks) {
    cv.line(px(v), TOP + PH, px(v), TOP + PH + 3, BLACK);
    cv.text(px(v), TOP + PH + 7, String(v), BLACK, 1, 'center');
  }
  cv.text(x0 + PW / 2, TOP + PH + 20, 'DIT EVALUATIONS PER WINDOW (LOG SCALE)', GREY, 1, 'center');
  cv.strokeRect(x0 - 1, TOP - 1, PW + 2, PH + 2, BLACK);
  const legendW = 12 + Math.max(...series.map((s) => Canvas.textWidth(s.name))) + 40;
  cv.fillRect(x0 + PW - legendW - 8, TOP + 4, legendW, series.length * 14 + 8, [255, 255, 255]);
  cv.strokeRect(x0 + PW - legendW - 8, TOP + 4, legendW, series.length * 14 + 8, LIGHT);
  series.forEach((s, i) => {
    const c = COLOURS[i % COLOURS.length]!;
    const pts = s.points.filter((p) => Number.isFinite(p[1])).sort((a, b) => a[0] - b[0]);
    for (let k = 1; k < pts.length; k++) cv.line(px(pts[k - 1]![0]), py(pts[k - 1]![1]), px(pts[k]![0]), py(pts[k]![1]), c, 2);
    for (const p of pts) cv.fillRect(px(p[0]) - 3, py(p[1]) - 3, 7, 7, c);
  });
  series.forEach((s, i) => {
    const c = COLOURS[i % COLOURS.length]!;
    cv.fillRect(x0 + PW - legendW, TOP + 12 + i * 14, 18, 3, c);
    cv.text(x0 + PW - legendW + 24, TOP + 10 + i * 14, s.name, BLACK);
  });
}

export function sweepPlot(r: SweepResult, metric: keyof Metrics = 'mel_distance'): SweepPlot {
  const samplers = [...new Set(r.rows.map((x) => x.sampler))];
  const seriesOf = (pick: (row: SweepResult['rows'][number]) => number | null): Series[] => samplers.map((name) => ({
    name, points: r.rows.filter((x) => x.sampler === name).map((x) => [x.dit_evals, pick(x) ?? NaN] as [number, number]),
  }));
  const withOrig = r.rows.some((x) => x.vs_original);
  const n = withOrig ? 2 : 1;
  const width = LEFT + n * (PW + LEFT) + 10, height = TOP + PH + 40;
  const cv = new Canvas(width, height);
  const label = metric.replace(/_/g, ' ').toUpperCase();
  panel(cv, LEFT, `${label} TO ${r.reference.sampler} X ${r.reference.steps}`, seriesOf((x) => x.vs_reference[metric]));
  const panels = [{ x: LEFT, y: TOP, w: PW, h: PH }];
  if (withOrig) {
    panel(cv, LEFT * 2 + PW, `${label} TO THE ORIGINAL`, seriesOf((x) => x.vs_original?.[metric] ?? null));
    panels.push({ x: LEFT * 2 + PW, y: TOP, w: PW, h: PH });
  }
  return { png: cv.toPng(), width, height, panels };
}
