/**
 * Fixed-step ODE solvers for dx/dt = v(x, t).
 *
 * A solver advances the state by one step of a time schedule. It sees the velocity only through `f`,
 * which already applies any constraint (CFM in-context re-imposition) to the point it is evaluated at, so
 * a new solver is a few lines:
 *
 *   const rk4: Solver = {
 *     name: 'rk4', order: 4, evals: 4,
 *     step: (f, x, t, dt) => tf.tidy(() => {
 *       const h = dt / 2;
 *       const k1 = f(x, t);
 *       const k2 = f(tf.add(x, tf.mul(k1, h)), t + h);
 *       const k3 = f(tf.add(x, tf.mul(k2, h)), t + h);
 *       const k4 = f(tf.add(x, tf.mul(k3, dt)), t + dt);
 *       return tf.add(x, tf.mul(tf.addN([k1, tf.mul(k2, 2), tf.mul(k3, 2), k4]), dt / 6));
 *     }),
 *   };
 *   solveOde(v, x0, { solver: rk4, steps: 10 })   // or registerSolver(rk4) and pass 'rk4'
 *
 * Contract: `step` returns a NEW tensor (the driver disposes the old state) and must not dispose `x`;
 * wrapping the body in tf.tidy disposes every intermediate. `f` returns a new tensor each call.
 */
import * as tf from '@tensorflow/tfjs-core';

/** velocity at (x, t); returns a new tensor, never disposes x */
export type VelocityAt = (x: tf.Tensor, t: number) => tf.Tensor;

/** the same velocity computed with event-loop turns inside it (the DiT yields between blocks) */
export type VelocityAtAsync = (x: tf.Tensor, t: number) => Promise<tf.Tensor>;

export interface Solver {
  readonly name: string;
  /** global order of accuracy (for documentation and tests) */
  readonly order: number;
  /** velocity evaluations per step */
  readonly evals: number;
  /** one step from time t to t + dt */
  step(f: VelocityAt, x: tf.Tensor, t: number, dt: number): tf.Tensor;
  /**
   * Optional: the same step with an async velocity (same operations in the same order, so the same bytes). Used by
   * `solveOdeAsync` when given one; a solver without it runs `step` there, handing the event loop back only
   * between steps.
   */
  stepAsync?(f: VelocityAtAsync, x: tf.Tensor, t: number, dt: number): Promise<tf.Tensor>;
}

/** await f(x, t), run `then` on it in a tf.tidy, dispose the velocity */
async function withVelocity(f: VelocityAtAsync, x: tf.Tensor, t: number, then: (k: tf.Tensor) => tf.Tensor): Promise<tf.Tensor> {
  const k = await f(x, t);
  try {
    return tf.tidy(() => then(k));
  } finally {
    k.dispose();
  }
}

const f32 = Math.fround;

/** Explicit Euler, exactly upstream's update x ← x + dt·v(x, t) (BASECFM.solve_euler). */
export const euler: Solver = {
  name: 'euler', order: 1, evals: 1,
  step: (f, x, t, dt) => tf.tidy(() => tf.add(x, tf.mul(dt, f(x, t)))),
  stepAsync: (f, x, t, dt) => withVelocity(f, x, t, (k) => tf.add(x, tf.mul(dt, k))),
};

/** Heun (explicit trapezoid, RK2): predictor x + dt·k1, then x + dt/2·(k1 + k2). */
export const heun: Solver = {
  name: 'heun', order: 2, evals: 2,
  step: (f, x, t, dt) => tf.tidy(() => {
    const k1 = f(x, t);
    const k2 = f(tf.add(x, tf.mul(dt, k1)), f32(t + dt));
    return tf.add(x, tf.mul(dt / 2, tf.add(k1, k2)));
  }),
  stepAsync: async (f, x, t, dt) => {
    const k1 = await f(x, t);
    try {
      const x2 = tf.tidy(() => tf.add(x, tf.mul(dt, k1)));
      try {
        return await withVelocity(f, x2, f32(t + dt), (k2) => tf.add(x, tf.mul(dt / 2, tf.add(k1, k2))));
      } finally { x2.dispose(); }
    } finally { k1.dispose(); }
  },
};

/** Explicit midpoint (RK2): x + dt·v(x + dt/2·k1, t + dt/2). */
export const midpoint: Solver = {
  name: 'midpoint', order: 2, evals: 2,
  step: (f, x, t, dt) => tf.tidy(() => {
    const k1 = f(x, t);
    const h = dt / 2;
    const k2 = f(tf.add(x, tf.mul(h, k1)), f32(t + h));
    return tf.add(x, tf.mul(dt, k2));
  }),
  stepAsync: async (f, x, t, dt) => {
    const h = dt / 2;
    const x2 = await withVelocity(f, x, t, (k1) => tf.add(x, tf.mul(h, k1)));
    try {
      return await withVelocity(f, x2, f32(t + h), (k2) => tf.add(x, tf.mul(dt, k2)));
    } finally { x2.dispose(); }
  },
};

/** Classic 4th-order Runge-Kutta. */
export const rk4: Solver = {
  name: 'rk4', order: 4, evals: 4,
  step: (f, x, t, dt) => tf.tidy(() => {
    const h = dt / 2;
    const k1 = f(x, t);
    const k2 = f(tf.add(x, tf.mul(h, k1)), f32(t + h));
    const k3 = f(tf.add(x, tf.mul(h, k2)), f32(t + h));
    const k4 = f(tf.add(x, tf.mul(dt, k3)), f32(t + dt));
    return tf.add(x, tf.mul(dt / 6, tf.addN([k1, tf.mul(2, k2), tf.mul(2, k3), k4])));
  }),
  stepAsync: async (f, x, t, dt) => {
    const h = dt / 2;
    const ks: tf.Tensor[] = [];
    try {
      // the stage points x + h·k1, x + h·k2, x + dt·k3 as the sync step forms them
      const stages: Array<[number, number]> = [[0, t], [h, f32(t + h)], [h, f32(t + h)], [dt, f32(t + dt)]];
      for (const [c, ti] of stages) {
        const xi = ks.length ? tf.tidy(() => tf.add(x, tf.mul(c, ks[ks.length - 1]!))) : x;
        try {
          ks.push(await f(xi, ti));
        } finally { if (xi !== x) xi.dispose(); }
      }
      const [k1, k2, k3, k4] = ks as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      return tf.tidy(() => tf.add(x, tf.mul(dt / 6, tf.addN([k1, tf.mul(2, k2), tf.mul(2, k3), k4]))));
    } finally { for (const k of ks) k.dispose(); }
  },
};

const registry = new Map<string, Solver>([euler, heun, midpoint, rk4].map((s) => [s.name, s]));

/** Make a solver available by name (e.g. for the CLI's --sampler). */
export function registerSolver(s: Solver): void {
  registry.set(s.name, s);
}

export function solverNames(): string[] {
  return [...registry.keys()];
}

export function getSolver(s: string | Solver): Solver {
  if (typeof s !== 'string') return s;
  const found = registry.get(s);
  if (!found) throw new Error(`unknown sampler "${s}" (choose one of: ${solverNames().join(', ')})`);
  return found;
}
