/**
 * This repository as a user installs it: `npm pack` (the built dist/, whatever package.json `files` ships) and
 * `npm ci` of that tarball in a temporary project, offline: the project's lockfile pins this repository's locked
 * versions of the runtime dependencies, so npm takes them from the npm cache that this repository's `npm ci` filled
 * (no registry access; optional native backends and install scripts are skipped). Everything runs in child
 * processes (tests/helpers/run_child.ts), never blocking the test's event loop.
 */
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runProcess } from './run_child.js';

const ROOT = join(import.meta.dirname, '..', '..');

export interface InstalledPackage {
  /** the temporary project holding node_modules/mucodec-ts */
  project: string;
  /** node_modules/.bin/mucodec of that project (what `npx mucodec` runs) */
  bin: string;
  /** paths inside the tarball, e.g. 'dist/src/cli.js' */
  files: string[];
}

/** dist/ must be the build of the sources (`npm ci` / `npm run build` make it): a stale dist would test old code. */
function checkDistFresh(): void {
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const js = join(ROOT, 'dist', relative(ROOT, p)).replace(/\.ts$/, '.js');
        let t = 0;
        try { t = statSync(js).mtimeMs; } catch { /* missing */ }
        if (t < statSync(p).mtimeMs) stale.push(relative(ROOT, p));
      }
    }
  };
  for (const d of ['src', 'convert', 'layers']) walk(join(ROOT, d));
  if (stale.length) throw new Error(`dist/ is older than ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? ', …' : ''}: run \`npm run build\` first`);
}

/** npm in `cwd`, without what an outer npm (`npm test`) put in the environment about this repository's project */
async function npm(args: string[], cwd: string): Promise<string> {
  const env: NodeJS.ProcessEnv = { npm_config_update_notifier: 'false' };
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_(package_|lifecycle_|config_local_prefix$)/.test(k)) env[k] = v;
  const r = await runProcess('npm', args, { cwd, env }, 240_000);
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

export async function installPackage(tmp: string): Promise<InstalledPackage> {
  checkDistFresh();
  // --ignore-scripts: pack the dist/ that is there (prepare would rebuild it while other test files read it)
  const packed = JSON.parse(await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT)) as
    Array<{ filename: string; files: Array<{ path: string }> }>;
  const tgz = join(tmp, packed[0]!.filename);
  const project = join(tmp, 'project');
  mkdirSync(project);
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const self = lock.packages['']!;
  const spec = `file:${tgz}`;
  const packages: Record<string, unknown> = { '': { name: 'user-project', version: '1.0.0', dependencies: { 'mucodec-ts': spec } } };
  for (const [k, v] of Object.entries(lock.packages)) if (k && !v.dev && !v.link) packages[k] = v;
  packages['node_modules/mucodec-ts'] = {
    version: self.version, resolved: spec, license: self.license, bin: self.bin, engines: self.engines,
    dependencies: self.dependencies, optionalDependencies: self.optionalDependencies,
  };
  writeFileSync(join(project, 'package.json'), JSON.stringify(packages['']));
  writeFileSync(join(project, 'package-lock.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', lockfileVersion: 3, requires: true, packages }));
  await npm(['ci', '--offline', '--ignore-scripts', '--omit=optional', '--no-audit', '--no-fund'], project);
  return { project, bin: join(project, 'node_modules', '.bin', 'mucodec'), files: packed[0]!.files.map((f) => f.path) };
}
