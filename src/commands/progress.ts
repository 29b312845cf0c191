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

export function makeProgress(title: string, stream: NodeJS.WriteStream = process.stderr, quiet = false): ProgressReporter {
  const tty = !!stream.isTTY;
  const t0 = Date.now();
  let lastLine = 0;
  let lastPct = -1;
  return {
    update(done, total, label = '') {
      if (quiet) return;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const el = (Date.now() - t0) / 1000;
      const eta = frac > 0 ? (el / frac) * (1 - frac) : NaN;
      if (tty) {
        const now = Date.now();
        if (now - lastLine < 100 && done < total) return;
        lastLine = now;
        const width = 24;
        const fill = Math.round(frac * width);
        const bar = '█'.repeat(fill) + '░'.repeat(width - fill);
        stream.write(`\r\x1b[2K${title} ${bar} ${(frac * 100).toFixed(0).padStart(3)}% ${label} elapsed ${fmtTime(el)} eta ${fmtTime(eta)}`);
      } else {
        const pct = Math.floor(frac * 10) * 10;
        if (pct !== lastPct || done === total) {
          lastPct = pct;
          stream.write(`${title}: ${(frac * 100).toFixed(0)}% ${label}\n`);
        }
      }
    },
    done(message) {
      if (quiet) return;
      if (tty) stream.write('\r\x1b[2K');
      if (message) stream.write(`${message}\n`);
    },
  };
}
