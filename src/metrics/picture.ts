/**
 * The comparison picture of `mucodec compare --png`: the log-mel spectrograms of the reference and the test and
 * their difference, side by side, with time and mel-band axes, dB colour bars and the metrics as a caption.
 *
 * Spectrogram: the channels' mean, STFT 2048 / hop 512 (periodic Hann, centred), 128 Slaney mel bands of |X| up to
 * half the sample rate, 20·log10(max(·, 1e-5)) dB. Each pixel column averages the frames it covers.
 */
import { forEachStftFrame } from '../audio/stft.js';
import { librosaMelFilterbank } from '../audio/mel.js';
import { Canvas, diverging, niceTicks, tickLabel, viridis, type RGB } from '../viz/canvas.js';
import type { Aligned, Metrics } from './index.js';

export const PICTURE_MELS = 128;
const N_FFT = 2048, HOP = 512;

/** (frames, PICTURE_MELS) dB values, frame-major */
export function logMelDb(channels: Float32Array[], sampleRate: number): { db: Float64Array; frames: number } {
  const n = channels[0]!.length;
  const mono = new Float64Array(n);
  for (const c of channels) for (let i = 0; i < n; i++) mono[i] += c[i]! / channels.length;
  const fb = librosaMelFilterbank({ sr: sampleRate, nFft: N_FFT, nMels: PICTURE_MELS });
  const bins = N_FFT / 2 + 1;
  const out: number[] = [];
  const mag = new Float64Array(bins);
  const frames = forEachStftFrame(mono, { nFft: N_FFT, hop: HOP }, (_t, re, im) => {
    for (let k = 0; k < bins; k++) mag[k] = Math.hypot(re[k]!, im[k]!);
    for (let m = 0; m < PICTURE_MELS; m++) {
      let acc = 0;
      for (let k = 0; k < bins; k++) { const w = fb[m * bins + k]!; if (w) acc += w * mag[k]!; }
      out.push(20 * Math.log10(Math.max(acc, 1e-5)));
    }
  });
  return { db: Float64Array.from(out), frames };
}

export interface Rect { x: number; y: number; w: number; h: number }
export interface ComparisonPicture {
  png: Buffer;
  width: number;
  height: number;
  panels: { reference: Rect; test: Rect; difference: Rect };
  /** colour range of the two spectrograms and of the difference, in dB */
  dbRange: [number, number];
  diffRange: [number, number];
}

const PANEL_W = 360, PANEL_H = 192, TOP = 92;
const BLACK: RGB = [0, 0, 0], GREY: RGB = [90, 90, 90];

/** per pixel column c, the mean over its frames of band m's value */
function columns(db: Float64Array, frames: number, width: number): Float64Array {
  const out = new Float64Array(width * PICTURE_MELS);
  for (let c = 0; c < width; c++) {
    const a = Math.floor((c * frames) / width), b = Math.max(a + 1, Math.floor(((c + 1) * frames) / width));
    for (let m = 0; m < PICTURE_MELS; m++) {
      let s = 0;
      for (let t = a; t < b; t++) s += db[t * PICTURE_MELS + m]!;
      out[c * PICTURE_MELS + m] = s / (b - a);
    }
  }
  return out;
}

function drawPanel(cv: Canvas, r: Rect, title: string, colour: (x: number, band: number) => RGB): void {
  cv.text(r.x, r.y - 20, title, BLACK, 2);
  for (let py = 0; py < r.h; py++) {
    const band = Math.floor(((r.h - 1 - py) * PICTURE_MELS) / r.h); // low bands at the bottom
    for (let px = 0; px < r.w; px++) cv.setPixel(r.x + px, r.y + py, colour(px, band));
  }
  cv.strokeRect(r.x - 1, r.y - 1, r.w + 2, r.h + 2, BLACK);
}

function timeAxis(cv: Canvas, r: Rect, seconds: number): void {
  const ticks = niceTicks(0, seconds, 5);
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1;
  for (const t of ticks) {
    const x = r.x + (t / seconds) * (r.w - 1);
    cv.line(x, r.y + r.h + 1, x, r.y + r.h + 4, BLACK);
    cv.text(x, r.y + r.h + 7, tickLabel(t, step), BLACK, 1, 'center');
  }
  cv.text(r.x + r.w / 2, r.y + r.h + 20, 'TIME (S)', GREY, 1, 'center');
}

function colourBar(cv: Canvas, x: number, y: number, h: number, lo: number, hi: number, map: (v: number) => RGB, label: string): void {
  for (let py = 0; py < h; py++) cv.fillRect(x, y + py, 14, 1, map(1 - py / (h - 1)));
  cv.strokeRect(x - 1, y - 1, 16, h + 2, BLACK);
  const ticks = niceTicks(lo, hi, 4);
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1;
  for (const v of ticks) {
    const py = y + (1 - (v - lo) / (hi - lo)) * (h - 1);
    cv.line(x + 15, py, x + 18, py, BLACK);
    cv.text(x + 21, py - 3, tickLabel(v, step), BLACK);
  }
  cv.text(x, y + h + 7, label, GREY);
}

const fmt = (v: number | null, d: number): string => (v === null || !Number.isFinite(v) ? 'N/A' : v.toFixed(d));

export function comparisonPicture(a: Aligned, metrics: Metrics, labels: { reference: string; test: string }): ComparisonPicture {
  const ref = logMelDb(a.ref, a.sampleRate), test = logMelDb(a.test, a.sampleRate);
  const rc = columns(ref.db, ref.frames, PANEL_W), tc = columns(test.db, test.frames, PANEL_W);
  let hi = -Infinity;
  for (const v of [...rc, ...tc]) if (v > hi) hi = v;
  hi = Math.ceil(hi / 10) * 10;
  const lo = hi - 80, dmax = 20;
  const x0 = 64, x1 = x0 + PANEL_W + 16, cb1 = x1 + PANEL_W + 12, x2 = cb1 + 80, cb2 = x2 + PANEL_W + 12;
  const width = cb2 + 70, height = TOP + PANEL_H + 40;
  const cv = new Canvas(width, height);
  const panels = {
    reference: { x: x0, y: TOP, w: PANEL_W, h: PANEL_H },
    test: { x: x1, y: TOP, w: PANEL_W, h: PANEL_H },
    difference: { x: x2, y: TOP, w: PANEL_W, h: PANEL_H },
  };
  const m = metrics;
  cv.text(12, 10, `REFERENCE ${labels.reference}   TEST ${labels.test}   (${a.seconds.toFixed(2)} S AT ${a.sampleRate} HZ)`, BLACK, 2);
  cv.text(12, 34, `MEL DISTANCE ${fmt(m.mel_distance, 3)}   STFT DISTANCE ${fmt(m.stft_distance, 3)}   SI-SDR ${fmt(m.si_sdr_db, 2)} DB   ` +
    `LSD ${fmt(m.lsd, 3)}   LOUDNESS DIFF ${m.loudness_diff_lu === null ? 'N/A' : `${m.loudness_diff_lu >= 0 ? '+' : ''}${m.loudness_diff_lu.toFixed(2)}`} LU`, BLACK, 2);
  const spec = (cols: Float64Array) => (px: number, band: number): RGB => viridis((cols[px * PICTURE_MELS + band]! - lo) / (hi - lo));
  drawPanel(cv, panels.reference, 'REFERENCE', spec(rc));
  drawPanel(cv, panels.test, 'TEST', spec(tc));
  drawPanel(cv, panels.difference, 'TEST - REFERENCE', (px, band) => diverging((tc[px * PICTURE_MELS + band]! - rc[px * PICTURE_MELS + band]!) / dmax));
  for (const r of Object.values(panels)) timeAxis(cv, r, a.seconds);
  for (const b of [0, 32, 64, 96, 128]) {
    const y = TOP + PANEL_H - 1 - (b / PICTURE_MELS) * (PANEL_H - 1);
    cv.line(x0 - 5, y, x0 - 2, y, BLACK);
    cv.text(x0 - 8, y - 3, String(b), BLACK, 1, 'right');
  }
  cv.text(8, TOP - 12, 'MEL BAND', GREY);
  colourBar(cv, cb1, TOP, PANEL_H, lo, hi, viridis, 'DB');
  colourBar(cv, cb2, TOP, PANEL_H, -dmax, dmax, (v) => diverging(2 * v - 1), 'DB DIFF');
  return { png: cv.toPng(), width, height, panels, dbRange: [lo, hi], diffRange: [-dmax, dmax] };
}
