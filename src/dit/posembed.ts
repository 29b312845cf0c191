/**
 * 2-D sin-cos position embedding of PatchEmbed (diffusers 0.27.2 embeddings.py:get_2d_sincos_pos_embed),
 * recomputed for the actual patch grid every forward, as upstream does whenever the grid differs from the
 * stored sample_size grid (it always does for MuCodec: rows = T/2, cols = 16).
 *
 * Layout (validated against the fixtures' mid.pos_embed_used_T*): token (r, c) = r·W + c (row-major over
 * the conv output), its first D/2 values encode the COLUMN coordinate and the last D/2 the ROW coordinate
 * (diffusers builds np.meshgrid(grid_w, grid_h) and calls grid[0] — the w grid — "emb_h"); each half is
 * [sin(pos·ω_k) for k < D/4, cos(pos·ω_k) for k < D/4] with ω_k = 10000^(−k/(D/4)).
 * Grid coordinates are float32 as numpy computes them: arange(n, float32) / (n / base_size) / scale; the
 * sin/cos are float64 and the result is cast to float32 (torch.from_numpy(...).float()).
 */

const cache = new Map<string, Float32Array>();

function gridCoords(n: number, baseSize: number, interpolationScale: number): Float32Array {
  const f = Math.fround;
  const div = f(n / baseSize); // python float n/base_size, applied to a float32 array → float32
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(f(i / div) / interpolationScale);
  return out;
}

/**
 * (gridH·gridW, embedDim) float32, row-major. Cached per (embedDim, gridH, gridW, baseSize, scale):
 * callers must not modify the returned array.
 */
export function get2dSincosPosEmbed(
  embedDim: number, gridH: number, gridW: number, baseSize: number, interpolationScale: number,
): Float32Array {
  const key = `${embedDim}/${gridH}/${gridW}/${baseSize}/${interpolationScale}`;
  const hit = cache.get(key);
  if (hit) return hit;
  if (embedDim % 4 !== 0) throw new Error(`2-D sin-cos position embedding needs embed_dim divisible by 4, got ${embedDim}`);
  const half = embedDim / 2;
  const quarter = embedDim / 4;
  const omega = new Float64Array(quarter);
  for (let k = 0; k < quarter; k++) omega[k] = 1 / 10000 ** (k / (half / 2));
  const gh = gridCoords(gridH, baseSize, interpolationScale);
  const gw = gridCoords(gridW, baseSize, interpolationScale);
  const out = new Float32Array(gridH * gridW * embedDim);
  for (let r = 0; r < gridH; r++) {
    for (let c = 0; c < gridW; c++) {
      const o = (r * gridW + c) * embedDim;
      for (let k = 0; k < quarter; k++) {
        const aw = gw[c]! * omega[k]!; // first half: column (w) coordinate
        const ah = gh[r]! * omega[k]!; // second half: row (h) coordinate
        out[o + k] = Math.sin(aw);
        out[o + quarter + k] = Math.cos(aw);
        out[o + half + k] = Math.sin(ah);
        out[o + half + quarter + k] = Math.cos(ah);
      }
    }
  }
  if (cache.size > 16) cache.delete(cache.keys().next().value!);
  cache.set(key, out);
  return out;
}
