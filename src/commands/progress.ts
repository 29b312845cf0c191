/**
 * Progress display: an updating one-line bar with ETA on a TTY (stderr), quiet periodic lines otherwise.
 */
export interface ProgressReporter {
  update(done: number, total: number, label?: string): void;
  done(message?: string): void;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60), r = Math.floor(s % 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}:${String(r).padStart(2, '0')}`;
}

/**
 * On a TTY the line is also redrawn every `tickMs` between updates (elapsed time runs on; the ETA counts down to the
 * finish projected at the last update), so minutes-long stretches between updates still show the work is alive.
 * The long computations hand the event loop back often enough for that (src/steps.ts). `done()` stops it; it may be
 * called more than once.
 */
export function makeProgress(title: string, stream: NodeJS.WriteStream = process.stderr, quiet = false, tickMs = 1000): ProgressReporter {
  const tty = !!stream.isTTY;
  const t0 = Date.now();
  let lastLine = 0;
  let lastPct = -1;
  // last state drawn on the TTY: fraction, label, projected total seconds (elapsed / fraction at that update)
  let state: { frac: number; label: string; total: number } | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  const draw = (): void => {
    if (!state) return;
    const el = (Date.now() - t0) / 1000;
    const eta = Number.isFinite(state.total) ? Math.max(0, state.total - el) : NaN;
    const width = 24;
    const fill = Math.round(state.frac * width);
    const bar = '█'.repeat(fill) + '░'.repeat(width - fill);
    stream.write(`\r\x1b[2K${title} ${bar} ${(state.frac * 100).toFixed(0).padStart(3)}% ${state.label} elapsed ${fmtTime(el)} eta ${fmtTime(eta)}`);
  };
  return {
    update(done, total, label = '') {
      if (quiet) return;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const el = (Date.now() - t0) / 1000;
      if (tty) {
        state = { frac, label, total: frac > 0 ? el / frac : NaN };
        const now = Date.now();
        if (now - lastLine < 100 && done < total) return;
        lastLine = now;
        draw();
        if (!timer && tickMs > 0) {
          timer = setInterval(draw, tickMs);
          timer.unref?.();
        }
      } else {
        const pct = Math.floor(frac * 10) * 10;
        if (pct !== lastPct || done === total) {
          lastPct = pct;
          stream.write(`${title}: ${(frac * 100).toFixed(0)}% ${label}\n`);
        }
      }
    },
    done(message) {
      if (timer) { clearInterval(timer); timer = null; }
      if (quiet) return;
      if (tty && state) stream.write('\r\x1b[2K');
      state = null;
      if (message) stream.write(`${message}\n`);
    },
  };
}
