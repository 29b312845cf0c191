/**
 * The CLI as a user gets it (issue 12, B1/B11/B13): this repository packed and installed into a temporary project
 * (tests/helpers/installed_package.ts), its `mucodec` run from a folder outside the source tree holding no weights.
 * convert reads the manifests the package ships (the built CLI used to look for them in dist/convert/manifests,
 * which the build does not make), encode and decode find the package's own tiny model (they used to look in the
 * working directory), and a length upstream crashes on (n ≡ 128 mod 768 codes) decodes to int(n/100·4·48000)
 * samples. The wasm threads' worker script runs from the package (it used to be copied into /tmp/mucodec-ts/ and
 * left there).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStateDict } from '../convert/torch.js';
import { readWav } from '../src/audio/wav.js';
import { readCodesFile, writeCodesFile } from '../src/codesfile.js';
import type { HostTensor } from '../src/hosttensor.js';
import { installPackage, type InstalledPackage } from './helpers/installed_package.js';
import { runProcess, type ChildResult } from './helpers/run_child.js';
import { T, odict, torchSave, type PyVal } from './helpers/torchsave.js';

const ROOT = join(import.meta.dirname, '..');
const FIX = join(ROOT, 'tests', 'fixtures', 'convert');
const TEST_WAV = join(ROOT, 'test_wav', 'test.wav');

const tmp = mkdtempSync(join(tmpdir(), 'mucodec-package-'));
const work = join(tmp, 'work'); // the user's folder: no weights/, no package.json
mkdirSync(work);
let pkg: InstalledPackage;

beforeAll(async () => { pkg = await installPackage(tmp); }, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const env = { ...process.env };
delete env.MUCODEC_WEIGHTS;

function mucodec(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<ChildResult> {
  return runProcess(pkg.bin, args, { cwd: work, env: { ...env, ...extraEnv } }, 540_000); // a 2-window decode: minutes on a loaded CI machine
}

function ok(r: ChildResult): ChildResult {
  expect(r.status, `exit ${r.status}\n${r.stderr.slice(-3000)}`).toBe(0);
  return r;
}

/** The e2e fixture weights (one flat dict) split into the three released containers' layouts. */
async function checkpoints(dir: string): Promise<string[]> {
  const all: Map<string, HostTensor> = await readStateDict(join(FIX, 'e2e.weights.pt'));
  const mucodecPt = new Map<PyVal, PyVal>(), muq = new Map<PyVal, PyVal>(), audioldm = new Map<PyVal, PyVal>();
  for (const [k, t] of all) {
    if (k === 'scale_factor' || k.startsWith('first_stage_model.')) audioldm.set(k, T(t));
    else {
      mucodecPt.set(k, T(t, k === 'zero_cond_embedding1'));
      if (k.startsWith('muencoder.')) muq.set(k.slice('muencoder.'.length), T(t));
    }
  }
  mkdirSync(dir, { recursive: true });
  const paths = [join(dir, 'mucodec.pt'), join(dir, 'muq.pt'), join(dir, 'audioldm_48k.pth')];
  await torchSave(paths[0]!, odict(mucodecPt), { root: 'mucodec' });
  await torchSave(paths[1]!, new Map<PyVal, PyVal>([['model', odict(muq)]]), { root: 'muq' });
  await torchSave(paths[2]!, new Map<PyVal, PyVal>([['state_dict', odict(audioldm)]]), { root: 'audioldm_48k' });
  return ['--mucodec', paths[0]!, '--muq', paths[1]!, '--audioldm', paths[2]!];
}

describe('installed package (npm pack → npm ci in a temporary project)', () => {
  it('ships dist, bin, the manifests, the tiny model and the pthread worker; no tests, sources or source maps', () => {
    for (const f of ['bin/mucodec.js', 'dist/src/cli.js', 'dist/src/index.d.ts', 'dist/convert/manifest.js', 'src/workers/pthread_worker.cjs',
      'convert/manifests/decoder.json', 'convert/manifests/muq.json', 'weights/tiny/config.json', 'weights/tiny/decoder.safetensors', 'README.md']) {
      expect(pkg.files).toContain(f);
    }
    expect(pkg.files.filter((f) => /^tests\/|\.ts$|\.map$|^bench\/|^test_wav\//.test(f) && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('mucodec --help and each command\'s --help print a usage, exit 0', async () => {
    expect(ok(await mucodec(['--help'])).stdout).toMatch(/mucodec encode +<in\.audio>/);
    const r = ok(await mucodec(['convert', '--help']));
    expect(r.stdout).toMatch(/^usage: mucodec convert +--mucodec/);
  });

  it('convert checks the real configuration against the shipped manifests, then converts the e2e fixture model', async () => {
    const src = await checkpoints(join(tmp, 'ckpt'));
    const real = await mucodec(['convert', ...src, '-o', join(work, 'real')]);
    expect(real.status).toBe(1);
    expect(real.stderr).not.toMatch(/cannot read manifest/);
    expect(real.stderr).toMatch(/convert: \d+ expected tensors are missing or mis-shaped/);
    expect(existsSync(join(work, 'real'))).toBe(false);
    const r = ok(await mucodec(['convert', ...src, '-o', 'e2e', '--config', join(FIX, 'e2e.case-config.json')]));
    expect(r.stdout).toMatch(/encoder\.safetensors: \d+ tensors/);
    expect(readdirSync(join(work, 'e2e')).sort()).toEqual(['config.json', 'decoder.safetensors', 'encoder.safetensors', 'vae.safetensors']);
    // the converted model encodes
    ok(await mucodec(['encode', TEST_WAV, '-o', 'e2e.mcodes', '--weights', 'e2e', '--quiet']));
    expect((await readCodesFile(join(work, 'e2e.mcodes'))).frames).toBe(151);
  });

  it('encode and decode with the package\'s tiny model from a folder without weights; 1664 codes (≡ 128 mod 768) decode', async () => {
    const enc = ok(await mucodec(['encode', TEST_WAV, '-o', 'song.mcodes', '--quiet']));
    expect(enc.stderr).toContain(`tiny test model in ${join(pkg.project, 'node_modules', 'mucodec-ts', 'weights', 'tiny')}`);
    const f = await readCodesFile(join(work, 'song.mcodes'));
    expect(f.frames).toBe(151);
    // 1664 codes: upstream skips its padding for this length and fails; here 2 windows, cross-faded and cut
    const n = 1664;
    const { codes, ...meta } = f;
    await writeCodesFile(join(work, 'long.mcodes'), { ...meta, frames: n, codes: Int32Array.from({ length: n }, (_, i) => codes[i % codes.length]!) });
    ok(await mucodec(['decode', 'long.mcodes', '-o', 'long.wav', '--steps', '1', '--seed', '1', '--quiet']));
    const out = await readWav(join(work, 'long.wav'));
    expect([out.sampleRate, out.channels.length, out.info.encoding, out.info.bitsPerSample]).toEqual([48000, 2, 'pcm', 16]);
    expect(out.channels[0]!.length).toBe(Math.trunc(n / 100 * 4 * 48000));
    expect(readdirSync(work).filter((x) => x.includes('.tmp-'))).toEqual([]);
  });

  it('2 wasm threads run the package\'s worker script, write nothing to the temp folder, and give the 1-thread codes', async () => {
    const emptyTmp = join(tmp, 'os-tmp');
    mkdirSync(emptyTmp);
    const t = { TMPDIR: emptyTmp, MUCODEC_BACKEND: 'wasm' };
    expect(ok(await mucodec(['--threads', '2', 'backend'], t)).stdout).toContain('backend wasm: chosen (2 threads)');
    ok(await mucodec(['--threads', '1', 'encode', TEST_WAV, '-o', 'one.mcodes', '--quiet'], t));
    const two = ok(await mucodec(['--threads', '2', 'encode', TEST_WAV, '-o', 'two.mcodes', '--quiet'], t));
    expect(two.stderr).not.toMatch(/threads unavailable/);
    expect(readFileSync(join(work, 'two.mcodes')).equals(readFileSync(join(work, 'one.mcodes')))).toBe(true);
    expect(readdirSync(emptyTmp)).toEqual([]);
  });
});
