/**
 * The package's own files (weights/tiny, convert/manifests, the wasm pthread worker script): found from the folder
 * this module lives in — the package — never from the working directory. The same code runs from src/ (tests,
 * vite-node) and from dist/ (the built CLI, an installed package), so the root is looked up rather than assumed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const NAME = 'mucodec-ts';

let root: string | null = null;

/** The folder holding this package's package.json (the first one above this module named mucodec-ts). */
export function packageRoot(): string {
  if (root) return root;
  for (let d = import.meta.dirname; ; d = dirname(d)) {
    const p = join(d, 'package.json');
    if (existsSync(p)) {
      try {
        if ((JSON.parse(readFileSync(p, 'utf8')) as { name?: unknown }).name === NAME) return (root = d);
      } catch { /* not ours: keep looking */ }
    }
    if (dirname(d) === d) throw new Error(`${NAME}: no package.json named "${NAME}" above ${import.meta.dirname}`);
  }
}

/** A path inside the package, e.g. packagePath('weights', 'tiny'). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
