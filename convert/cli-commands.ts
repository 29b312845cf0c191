/**
 * `mucodec inspect` and `mucodec convert` (wired into the dispatcher by src/cli.ts / src/commands).
 *
 *   mucodec inspect <file.pt|file.pth|file.safetensors> [--json]
 *       every tensor: name (container path joined with '.'), dtype, shape; --json prints a JSON array of
 *       {name, dtype, shape}.
 *   mucodec convert --mucodec ckpt/mucodec.pt --muq muq_dev/muq.pt --audioldm tools/audioldm_48k.pth -o weights/
 *                   [--config config.json] [--dtype f32|f16] [--half-encoder]
 *   mucodec convert --from weights/ --dtype f16 -o weights-f16/     (a converted folder rewritten as f16 / f32)
 */
import { stat } from 'node:fs/promises';
import { checkKnown, optFlag, optString, parseArgs } from '../src/commands/args.js';
import type { CommandContext } from '../src/commands/context.js';
import { makeProgress } from '../src/commands/progress.js';
import { numel, type DType } from '../src/hosttensor.js';
import { convert } from './convert.js';
import { convertFolderDtype, parseWeightsDtype } from './half_weights.js';
import { readCodesFile } from '../src/codesfile.js';
import { SafetensorsFile } from './safetensors.js';
import { loadTorchCheckpoint, stateDictRoot } from './torch.js';

export interface InspectedTensor { name: string; dtype: DType; shape: number[] }

/** Every tensor of a torch.save file or a safetensors file, in file order. */
export async function inspectFile(path: string): Promise<{ format: string; stateDictRoot?: string; tensors: InspectedTensor[] }> {
  if (/\.safetensors$/i.test(path)) {
    const f = await SafetensorsFile.open(path);
    try {
      return { format: 'safetensors', tensors: [...f.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })) };
    } finally {
      await f.close();
    }
  }
  const ck = await loadTorchCheckpoint(path);
  try {
    const tensors = ck.tensors().map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] }));
    for (const u of ck.unsupported) process.emitWarning(`${path}: tensor "${u.name}" has unsupported storage ${u.storageType}`);
    return { format: `torch ${ck.format}`, stateDictRoot: stateDictRoot(ck), tensors };
  } finally {
    await ck.close();
  }
}

export async function inspectCommand(argv: string[], ctx: CommandContext = {}): Promise<number> {
  const print = ctx.log ?? ((s: string) => console.log(s));
  const a = parseArgs(argv, ['json']);
  checkKnown(a, ['json']);
  if (a.positionals.length !== 1) throw new Error('inspect: give exactly one file (.pt, .pth, .safetensors or .mcodes)');
  const path = a.positionals[0]!;
  const st = await stat(path).catch((e: Error) => { throw new Error(`inspect: ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? e.message})`); });
  if (!st.isFile()) throw new Error(`inspect: ${path} is ${st.isDirectory() ? 'a folder' : 'not a regular file'}; give a .pt, .pth, .safetensors or .mcodes file`);
  if (/\.mcodes$/i.test(path)) {
    // a codes file: validate it (magic, version, length, CRC) and show its header
    const f = await readCodesFile(path);
    const { codes, ...meta } = f;
    if (optFlag(a, 'json')) print(JSON.stringify({ ...meta, codes: Array.from(codes) }));
    else {
      for (const [k, v] of Object.entries(meta)) print(`${k.padEnd(16)} ${String(v)}`);
      print(`${'codes'.padEnd(16)} ${codes.length} (first: ${Array.from(codes.slice(0, 8)).join(' ')}${codes.length > 8 ? ' …' : ''})`);
    }
    return 0;
  }
  const info = await inspectFile(path);
  if (optFlag(a, 'json')) {
    print(JSON.stringify(info.tensors));
    return 0;
  }
  const w = Math.max(4, ...info.tensors.map((t) => t.name.length));
  let params = 0;
  for (const t of info.tensors) {
    params += numel(t.shape);
    print(`${t.name.padEnd(w)}  ${t.dtype.padEnd(8)}  (${t.shape.join(', ')})`);
  }
  print(`${path}: ${info.format}, ${info.tensors.length} tensors, ${params} values` +
    (info.stateDictRoot !== undefined ? `, state dict root "${info.stateDictRoot}"` : ''));
  return 0;
}

export async function convertCommand(argv: string[], ctx: CommandContext = {}): Promise<number> {
  const print = ctx.log ?? ((s: string) => console.log(s));
  const a = parseArgs(argv, ['half-encoder']);
  checkKnown(a, ['mucodec', 'muq', 'audioldm', 'output', 'config', 'dtype', 'from', 'half-encoder']);
  const dtype = parseWeightsDtype(optString(a, 'dtype'));
  const halfEncoder = optFlag(a, 'half-encoder');
  if (halfEncoder && dtype !== 'float16') throw new Error('convert: --half-encoder needs --dtype f16');
  const from = optString(a, 'from');
  if (from !== undefined) {
    if (a.positionals.length) throw new Error(`convert: unexpected argument "${a.positionals[0]}"`);
    for (const k of ['mucodec', 'muq', 'audioldm', 'config']) if (optString(a, k) !== undefined) throw new Error(`convert: --from rewrites a converted folder; --${k} does not go with it`);
    const outDir = optString(a, 'output');
    if (!outDir) throw new Error('convert: -o is required (usage: mucodec convert --from weights/ --dtype f16 -o weights-f16/)');
    const progress = makeProgress('convert', process.stderr, !process.stderr.isTTY);
    const r = await convertFolderDtype({ from, outDir, dtype, halfEncoder, onProgress: (done, total, label) => progress.update(done, total, label.split(' ')[0]) });
    progress.done();
    for (const f of r.files) print(`${f.path}: ${(f.bytes / 2 ** 20).toFixed(1)} MiB`);
    print(`${outDir}/config.json written (${dtype}${Object.keys(r.kept).length ? `, ${Object.keys(r.kept).length} tensors kept float32` : ''})`);
    return 0;
  }
  const need = (k: string): string => {
    const v = optString(a, k);
    if (!v) throw new Error(`convert: --${k} is required (usage: mucodec convert --mucodec ckpt/mucodec.pt --muq muq_dev/muq.pt --audioldm tools/audioldm_48k.pth -o weights/)`);
    return v;
  };
  if (a.positionals.length) throw new Error(`convert: unexpected argument "${a.positionals[0]}"`);
  const opts = { mucodec: need('mucodec'), muq: need('muq'), audioldm: need('audioldm'), outDir: need('output') };
  const progress = makeProgress('convert', process.stderr, !process.stderr.isTTY);
  const r = await convert({
    ...opts,
    config: optString(a, 'config'),
    dtype, halfEncoder,
    onProgress: (done, total, label) => progress.update(done, total, label.split(' ')[0]),
  });
  progress.done();
  for (const f of r.files) print(`${f.path}: ${f.tensors} tensors, ${(f.bytes / 2 ** 20).toFixed(1)} MiB`);
  print(`${r.outDir}/config.json written (MuQ layers stored: ${r.config.converted.muq_layers_stored})`);
  return 0;
}
