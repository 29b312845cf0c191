/**
 * A minimal RGBA raster for the project's pictures (spectrogram comparisons, sweep plots): rectangles, lines,
 * bitmap text, colour maps, and PNG output through `pngjs`.
 */
import { PNG } from 'pngjs';
import { GLYPH_H, GLYPH_W, glyph } from './font.js';

export type RGB = [number, number, number];

export class Canvas {
  readonly data: Uint8Array;
  constructor(readonly width: number, readonly height: number, background: RGB = [255, 255, 255]) {
    this.data = new Uint8Array(width * height * 4);
    this.fillRect(0, 0, width, height, background);
  }

  setPixel(x: number, y: number, c: RGB): void {
    x = Math.round(x); y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 4;
    this.data[o] = c[0]; this.data[o + 1] = c[1]; this.data[o + 2] = c[2]; this.data[o + 3] = 255;
  }

  fillRect(x: number, y: number, w: number, h: number, c: RGB): void {
    for (let j = Math.max(0, Math.round(y)); j < Math.min(this.height, Math.round(y + h)); j++) {
      for (let i = Math.max(0, Math.round(x)); i < Math.min(this.width, Math.round(x + w)); i++) this.setPixel(i, j, c);
    }
  }

  strokeRect(x: number, y: number, w: number, h: number, c: RGB): void {
    this.line(x, y, x + w - 1, y, c); this.line(x, y + h - 1, x + w - 1, y + h - 1, c);
    this.line(x, y, x, y + h - 1, c); this.line(x + w - 1, y, x + w - 1, y + h - 1, c);
  }

  /** a line of `thickness` pixels (square pen) */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, thickness = 1): void {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    const r = (thickness - 1) / 2;
    for (let s = 0; s <= n; s++) {
      const x = x0 + ((x1 - x0) * s) / n, y = y0 + ((y1 - y0) * s) / n;
      if (thickness <= 1) this.setPixel(x, y, c);
      else this.fillRect(x - r, y - r, thickness, thickness, c);
    }
  }

  /** width in pixels of `text` at `scale` */
  static textWidth(text: string, scale = 1): number {
    return text.length ? (text.length * (GLYPH_W + 1) - 1) * scale : 0;
  }

  /** text with its top-left corner at (x, y); align 'center' / 'right' shift it left by half / all its width */
  text(x: number, y: number, text: string, c: RGB = [0, 0, 0], scale = 1, align: 'left' | 'center' | 'right' = 'left'): void {
    const w = Canvas.textWidth(text, scale);
    let cx = Math.round(align === 'left' ? x : align === 'center' ? x - w / 2 : x - w);
    for (const ch of text) {
      const rows = glyph(ch);
      for (let r = 0; r < GLYPH_H; r++) {
        for (let b = 0; b < GLYPH_W; b++) if (rows[r]! & (1 << (GLYPH_W - 1 - b))) this.fillRect(cx + b * scale, y + r * scale, scale, scale, c);
      }
      cx += (GLYPH_W + 1) * scale;
    }
  }

  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    png.data.set(this.data);
    return PNG.sync.write(png);
  }
}

/** perceptual sequential colour map (anchors of matplotlib's viridis, linearly interpolated), v in [0, 1] */
const VIRIDIS: RGB[] = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
export function viridis(v: number): RGB { return interpolate(VIRIDIS, v); }

/** diverging map for signed differences: blue (−1) – white (0) – red (+1) */
const DIVERGING: RGB[] = [[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199], [239, 138, 98], [178, 24, 43]];
export function diverging(v: number): RGB { return interpolate(DIVERGING, (v + 1) / 2); }

function interpolate(anchors: RGB[], v: number): RGB {
  const x = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)) * (anchors.length - 1);
  const i = Math.min(anchors.length - 2, Math.floor(x)), f = x - i;
  const a = anchors[i]!, b = anchors[i + 1]!;
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

/** "nice" tick values covering [lo, hi] (about `count` of them, steps of 1, 2 or 5 × 10^k) */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) out.push(Math.abs(v) < 1e-12 ? 0 : v);
  return out;
}

/** a tick label: no more decimals than the step needs */
export function tickLabel(v: number, step: number): string {
  const d = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
  return v.toFixed(d);
}
