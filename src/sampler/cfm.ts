/**
 * Conditional flow matching sampling as MuCodec does it (model.py BASECFM.solve_euler), generalised to any
 * solver / schedule / batch size:
 *
 *  - estimator input = concat over channels [x, incontext_x, mu] (32 + 32 + 32 = 96);
 *  - classifier-free guidance (guidance_scale > 1): the batch is doubled as [uncond; cond] where uncond uses
 *    mu = ZEROS (not zero_cond_embedding1), and v = u + g·(c − u);
 *  - in-context frames [0, incontext_length) are re-imposed before every evaluation on their straight path
 *    from the initial noise to the known latents: x = (1 − (1 − σ_min)·t)·noise + t·incontext_x.
 *
 * Upstream passes the timestep as t.unsqueeze(-1).repeat(2) / t.unsqueeze(-1), which only works for batch 1;
 * here the estimator gets one t per batch row (the same scalar t broadcast), identical for B = 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import { drainSteps, odeSteps, solveOdeAsync, type OdeOptions, type StepInfo } from './ode.js';
import type { VelocityAt, VelocityAtAsync } from './solvers.js';

/** Anything mapping (B, 96, T, W) and one flow time per row to (B, 32, T, W): the DiT, or a test double. */
export interface Estimator {
  forward(hidden: tf.Tensor4D, t: ArrayLike<number>): tf.Tensor4D;
  /** optional: the same forward giving the event loop turns inside it (the DiT: between blocks); same bytes */
  forwardAsync?(hidden: tf.Tensor4D, t: ArrayLike<number>, signal?: AbortSignal): Promise<tf.Tensor4D>;
}

export interface CfmInputs {
  /** initial noise (B, C, T, W); also the noise end of the in-context path */
  x: tf.Tensor4D;
  /** known latents (B, C, T, W) (only frames [0, incontextLength) are used for the path; all frames are fed to the estimator) */
  incontextX: tf.Tensor4D;
  incontextLength: number;
  /** condition (B, C, T, W) */
  mu: tf.Tensor4D;
  /** > 1 enables classifier-free guidance */
  guidanceScale: number;
  /** default 1e-4 (BASECFM.sigma_min) */
  sigmaMin?: number;
}

/**
 * The guided velocity field v(x, t) of the CFM problem (no in-context handling). The returned function
 * holds tensors built once from the inputs: call `dispose()` when done. `.async` is the same field through the
 * estimator's `forwardAsync` when it has one (else through `forward`), with the same operations in the same order;
 * `signal` (optional) is handed to `forwardAsync`.
 */
export function cfmVelocity(estimator: Estimator, inp: CfmInputs, signal?: AbortSignal): VelocityAt & { dispose(): void; async: VelocityAtAsync } {
  const [b] = inp.x.shape;
  const cfg = inp.guidanceScale > 1.0;
  // constant parts of the estimator input: [incontext_x, mu] per batch row (doubled for CFG)
  const rest = tf.tidy(() => cfg
    ? tf.concat([tf.concat([inp.incontextX, inp.incontextX], 0), tf.concat([tf.zerosLike(inp.mu), inp.mu], 0)], 1)
    : tf.concat([inp.incontextX, inp.mu], 1));
  const rows = cfg ? 2 * b : b;
  const g = inp.guidanceScale;
  // estimator input [x; x] ‖ rest (CFG rows [uncond; cond]) and the guided combination u + g·(c − u)
  const input = (x: tf.Tensor): tf.Tensor4D => tf.concat([cfg ? tf.concat([x, x], 0) : x, rest], 1) as tf.Tensor4D;
  const guide = (out: tf.Tensor): tf.Tensor => {
    const [u, c] = tf.split(out, 2, 0) as [tf.Tensor, tf.Tensor];
    return tf.add(u, tf.mul(g, tf.sub(c, u)));
  };
  const fn = ((x: tf.Tensor, t: number): tf.Tensor => tf.tidy(() => {
    const out = estimator.forward(input(x), new Float32Array(rows).fill(t));
    return cfg ? guide(out) : out;
  })) as VelocityAt & { dispose(): void; async: VelocityAtAsync };
  fn.async = async (x, t) => {
    const inp4 = tf.tidy(() => input(x));
    let out: tf.Tensor4D;
    try {
      const ts = new Float32Array(rows).fill(t);
      out = estimator.forwardAsync ? await estimator.forwardAsync(inp4, ts, signal) : estimator.forward(inp4, ts);
    } finally {
      inp4.dispose();
    }
    if (!cfg) return out;
    try {
      return tf.tidy(() => guide(out));
    } finally {
      out.dispose();
    }
  };
  fn.dispose = () => rest.dispose();
  return fn;
}

/**
 * The in-context constraint: frames [0, L) of x replaced by (1 − (1 − σ_min)·t)·noise + t·incontext_x
 * (float32 coefficients in upstream's order). Returns null when L = 0.
 */
export function incontextConstraint(inp: CfmInputs): ((x: tf.Tensor, t: number) => tf.Tensor) & { dispose(): void } | null {
  const L = inp.incontextLength;
  if (!L) return null;
  const [b, ch, T, w] = inp.x.shape;
  if (L > T) throw new Error(`incontext_length ${L} exceeds the ${T} latent frames`);
  const f = Math.fround;
  const sigma = f(1 - (inp.sigmaMin ?? 1e-4)); // python float (1 - sigma_min), cast to float32 by the tensor op
  const noiseL = inp.x.slice([0, 0, 0, 0], [b, ch, L, w]);
  const incL = inp.incontextX.slice([0, 0, 0, 0], [b, ch, L, w]);
  const fn = ((x: tf.Tensor, t: number): tf.Tensor => tf.tidy(() => {
    const a = f(1 - f(sigma * t));
    const head = tf.add(tf.mul(noiseL, a), tf.mul(incL, t));
    if (L === T) return head;
    return tf.concat([head, x.slice([0, 0, L, 0], [b, ch, T - L, w])], 2);
  })) as ((x: tf.Tensor, t: number) => tf.Tensor) & { dispose(): void };
  fn.dispose = () => { noiseL.dispose(); incL.dispose(); };
  return fn;
}

/** The CFM solve as a step generator (see `odeSteps`): one yield per step, the final x as its return value. */
export function* cfmSteps(estimator: Estimator, inp: CfmInputs, opts: OdeOptions = {}): Generator<StepInfo, tf.Tensor4D, void> {
  const v = cfmVelocity(estimator, inp);
  const c = incontextConstraint(inp);
  try {
    return (yield* odeSteps(v, inp.x, { ...opts, constrain: c ?? opts.constrain })) as tf.Tensor4D;
  } finally {
    v.dispose();
    c?.dispose();
  }
}

/**
 * Solve the CFM ODE from inp.x (noise, t = 0) to t = 1. With the default options (Euler,
 * linspace(0, 1, steps + 1)) this is upstream's solve_euler. Returns the final x (before inference_codes
 * puts the in-context latents back). Inputs are not disposed.
 */
export function solveCfm(estimator: Estimator, inp: CfmInputs, opts: OdeOptions = {}): tf.Tensor4D {
  return drainSteps(cfmSteps(estimator, inp, opts));
}

/**
 * `solveCfm` without holding the event loop: a turn after every step and, with an estimator that has
 * `forwardAsync` (the DiT), between its blocks. Same result, bit for bit. An aborted `signal` stops it at the
 * next of those turns with the signal's reason.
 */
export async function solveCfmAsync(estimator: Estimator, inp: CfmInputs, opts: OdeOptions & { signal?: AbortSignal } = {}): Promise<tf.Tensor4D> {
  const v = cfmVelocity(estimator, inp, opts.signal);
  const c = incontextConstraint(inp);
  try {
    return (await solveOdeAsync(v, inp.x, { ...opts, constrain: c ?? opts.constrain, velocityAsync: v.async, signal: opts.signal })) as tf.Tensor4D;
  } finally {
    v.dispose();
    c?.dispose();
  }
}
