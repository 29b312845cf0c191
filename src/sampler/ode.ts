/**
 * The ODE driver: integrate dx/dt = v(x, t) over a time schedule with a pluggable solver.
 *
 * Time bookkeeping follows upstream BASECFM.solve_euler exactly (float32): t starts at t_span[0], each step
 * uses dt = t_span[k+1] − t and then t ← t + dt, so the times the velocity sees are the ACCUMULATED float32
 * times (bit-identical to upstream's, which can differ from t_span[k] in the last bit).
 *
 * An optional `constrain(x, t)` is applied to the state at the start of every step and to every point a
 * solver evaluates the velocity at (CFM in-context frames: the known frames are put back on their
 * noise→data path at that time). For Euler this is exactly upstream's in-place overwrite before each step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkSchedule, uniformSchedule } from './schedule.js';
import { getSolver, type Solver, type VelocityAt } from './solvers.js';

export interface StepInfo {
  /** 0-based step index */
  step: number;
  steps: number;
  /** time at the start of the step and its length */
  t: number;
  dt: number;
  /** the state after the step (valid only during the callback) */
  x: tf.Tensor;
}

export interface OdeOptions {
  /** number of steps of the default schedule linspace(0, 1, steps + 1) (ignored when tSpan is given) */
  steps?: number;
  /** explicit time schedule (steps + 1 points, strictly increasing) */
  tSpan?: ArrayLike<number>;
  /** 'euler' (upstream, default), 'heun', 'midpoint', 'rk4', a registered name, or a Solver object */
  solver?: string | Solver;
  /** projection applied before every velocity evaluation and at the start of each step (returns a new tensor) */
  constrain?: (x: tf.Tensor, t: number) => tf.Tensor;
  /** progress / inspection callback after each step */
  onStep?: (info: StepInfo) => void;
}

/**
 * The solve as a generator: one `yield` after every step (its StepInfo, after `onStep` ran), the final x as the
 * return value. Lets a caller run the same steps synchronously (`solveOde`) or hand the event loop back between
 * steps (`solveOdeAsync`) without two copies of the loop. Stopping it early (`return()` / a throw) disposes the
 * state; inputs are never disposed.
 */
export function* odeSteps(v: VelocityAt, x0: tf.Tensor, opts: OdeOptions = {}): Generator<StepInfo, tf.Tensor, void> {
  const tSpan = opts.tSpan !== undefined ? checkSchedule(opts.tSpan) : uniformSchedule(opts.steps ?? 20);
  const solver = getSolver(opts.solver ?? 'euler');
  const c = opts.constrain;
  const f: VelocityAt = c
    ? (x, t) => tf.tidy(() => { const xc = c(x, t); return v(xc, t); })
    : v;
  const f32 = Math.fround;
  const steps = tSpan.length - 1;
  let t = tSpan[0]!;
  let x = tf.clone(x0);
  let finished = false;
  try {
    for (let k = 0; k < steps; k++) {
      const dt = f32(tSpan[k + 1]! - t);
      if (c) {
        const xc = c(x, t);
        x.dispose();
        x = xc;
      }
      const next = solver.step(f, x, t, dt);
      x.dispose();
      x = next;
      const t0 = t;
      t = f32(t + dt);
      const info: StepInfo = { step: k, steps, t: t0, dt, x };
      opts.onStep?.(info);
      yield info;
    }
    finished = true;
    return x;
  } finally {
    if (!finished) x.dispose();
  }
}

/** Run a step generator to its end, synchronously. */
export function drainSteps<Y, R>(gen: Generator<Y, R, void>): R {
  for (;;) {
    const r = gen.next();
    if (r.done) return r.value;
  }
}

/** Hand the event loop back for one turn: timers, I/O, an AbortSignal fired from outside, a TTY redraw. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((res) => setImmediate(res));
}

/**
 * Run a step generator to its end, yielding to the event loop between steps (so a long solve does not block
 * the process: a SIGINT handler, a timer-driven abort or an RPC heartbeat gets through after every step).
 * `between` may throw (e.g. an abort check); the generator is then closed so it disposes its state.
 */
export async function drainStepsAsync<Y, R>(gen: Generator<Y, R, void>, between?: () => void): Promise<R> {
  try {
    for (;;) {
      const r = gen.next();
      if (r.done) return r.value;
      await yieldToEventLoop();
      between?.();
    }
  } catch (e) {
    gen.return(undefined as never);
    throw e;
  }
}

/**
 * Solve from x0 at tSpan[0] to tSpan[last]. `x0` is not disposed; the result is a new tensor.
 * `v` must return a new tensor and not dispose its input.
 */
export function solveOde(v: VelocityAt, x0: tf.Tensor, opts: OdeOptions = {}): tf.Tensor {
  return drainSteps(odeSteps(v, x0, opts));
}

/** `solveOde` that gives the event loop a turn after every step (same steps, same result). */
export function solveOdeAsync(v: VelocityAt, x0: tf.Tensor, opts: OdeOptions = {}): Promise<tf.Tensor> {
  return drainStepsAsync(odeSteps(v, x0, opts));
}
