/** Minimal argv parsing shared by the commands: positionals, `--flag value`, `--flag=value`, boolean flags. */
export interface ParsedArgs {
  positionals: string[];
  options: Map<string, string | true>;
}

export function parseArgs(argv: string[], booleanFlags: readonly string[] = []): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) { options.set(a.slice(2, eq), a.slice(eq + 1)); continue; }
      const name = a.slice(2);
      if (booleanFlags.includes(name)) { options.set(name, true); continue; }
      const next = argv[i + 1];
      // no value: recorded as `true`, so that checkKnown() reports an unknown option as unknown, and optString()
      // says that a known one needs a value
      if (next === undefined || next.startsWith('--')) { options.set(name, true); continue; }
      options.set(name, next); i++;
    } else if (a === '-o') {
      const next = argv[i + 1];
      if (next === undefined) throw new Error('option -o needs a value');
      options.set('output', next); i++;
    } else if (a === '-v') {
      options.set('verbose', true);
    } else {
      positionals.push(a);
    }
  }
  return { positionals, options };
}

export function optString(a: ParsedArgs, name: string): string | undefined {
  const v = a.options.get(name);
  if (v === true) throw new Error(`option --${name} needs a value`);
  return v;
}

export function optNumber(a: ParsedArgs, name: string, check?: (n: number) => boolean, what = 'a number'): number | undefined {
  const v = optString(a, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (check && !check(n))) throw new Error(`option --${name}: "${v}" is not ${what}`);
  return n;
}

export function optFlag(a: ParsedArgs, name: string): boolean {
  return a.options.get(name) === true;
}

/** Reject options the command does not know (typos must not be silently ignored). */
export function checkKnown(a: ParsedArgs, known: readonly string[]): void {
  for (const k of a.options.keys()) {
    if (!known.includes(k)) throw new Error(`unknown option --${k}`);
  }
}
