/**
 * Time schedules for the flow ODE (t from 0 = noise to 1 = data).
 */

/**
 * torch.linspace(start, end, steps) in float32 as ATen's scalar CPU kernel computes it:
 * step = (end − start)/(steps − 1); the first half start + step·i, the second half end − step·(steps − 1 − i).
 * (torch's vectorised loop handles blocks of 2 × vector width — 32 floats with AVX-512, 16 with AVX2 — and
 * computes their points as base + k·step from the first-half formula, so for ≥ 32 (≥ 16) points a few middle
 * points may differ from this by 1 ulp: 21 points (20 steps) are all scalar under AVX-512. Fixtures give t_span
 * explicitly or use ≤ 5 points.)
 */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(steps);
  if (steps === 1) { out[0] = start; return out; }
  const s0 = f(start), s1 = f(end);
  const step = f(f(s1 - s0) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < halfway ? f(s0 + f(step * i)) : f(s1 - f(step * (steps - i - 1)));
  }
  return out;
}

/** Upstream's schedule: linspace(0, 1, steps + 1). */
export function uniformSchedule(steps: number): Float32Array {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`steps must be a positive integer, got ${steps}`);
  return linspaceF32(0, 1, steps + 1);
}

/**
 * Validate a user-supplied schedule: at least 2 points, finite, strictly increasing (decreasing schedules
 * would integrate backwards — allowed when `allowDecreasing`), returned as float32.
 */
export function checkSchedule(tSpan: ArrayLike<number>, allowDecreasing = false): Float32Array {
  const t = Float32Array.from(tSpan);
  if (t.length < 2) throw new Error(`a t-schedule needs at least 2 points, got ${t.length}`);
  for (let i = 0; i < t.length; i++) if (!Number.isFinite(t[i]!)) throw new Error(`t-schedule point ${i} is not finite`);
  const dir = Math.sign(t[1]! - t[0]!);
  if (dir === 0 || (dir < 0 && !allowDecreasing)) throw new Error('t-schedule must be strictly increasing');
  for (let i = 1; i < t.length; i++) {
    if (Math.sign(t[i]! - t[i - 1]!) !== dir) throw new Error(`t-schedule is not strictly monotonic at point ${i}`);
  }
  return t;
}

/**
 * A schedule with steps concentrated near t = 0 or t = 1: t_i = (i/n)^gamma (gamma > 1: denser near 0).
 * A research convenience, not used by upstream.
 */
export function powerSchedule(steps: number, gamma: number): Float32Array {
  const out = new Float32Array(steps + 1);
  for (let i = 0; i <= steps; i++) out[i] = (i / steps) ** gamma;
  return out;
}
