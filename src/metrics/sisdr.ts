/**
 * Scale-invariant signal-to-distortion ratio (Le Roux et al., "SDR — half-baked or well done?", ICASSP 2019), in dB,
 * per channel and averaged: both signals made zero-mean, s_target = (⟨ŝ, s⟩ / ⟨s, s⟩)·s, e = ŝ − s_target,
 * SI-SDR = 10·log10((‖s_target‖² + ε) / (‖e‖² + ε)) with ε = 1e-8 (keeps identical or silent signals finite, as
 * audiotools' SISDRLoss does with its eps). float64.
 */
export const SISDR_EPS = 1e-8;

export function siSdr(ref: Float32Array[], test: Float32Array[]): number {
  if (!ref.length || ref.length !== test.length) throw new Error(`metrics: ${ref.length} reference channel(s) vs ${test.length} test channel(s)`);
  let total = 0;
  for (let c = 0; c < ref.length; c++) {
    const s = ref[c]!, e = test[c]!;
    const n = s.length;
    if (e.length !== n || n === 0) throw new Error('metrics: SI-SDR needs two non-empty channels of one length');
    let ms = 0, me = 0;
    for (let i = 0; i < n; i++) { ms += s[i]!; me += e[i]!; }
    ms /= n; me /= n;
    let ss = 0, se = 0;
    for (let i = 0; i < n; i++) { const a = s[i]! - ms; ss += a * a; se += a * (e[i]! - me); }
    const alpha = se / (ss + SISDR_EPS);
    let target = 0, noise = 0;
    for (let i = 0; i < n; i++) {
      const t = alpha * (s[i]! - ms);
      const r = (e[i]! - me) - t;
      target += t * t; noise += r * r;
    }
    total += 10 * Math.log10((target + SISDR_EPS) / (noise + SISDR_EPS));
  }
  return total / ref.length;
}
