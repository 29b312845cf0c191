/**
 * A tiny WebAssembly (SIMD128) module assembler: enough to write straight-line and looping numeric kernels that
 * run on the tfjs-wasm heap (the module imports the backend's WebAssembly.Memory; see ./heap.ts).
 *
 * Only what the synthesis kernels need: i32/f32/f64/v128 locals, blocks and loops, loads/stores, scalar and
 * f32x4/f64x2 arithmetic, splats, shuffles, bitselect, direct calls; f32x4.relaxed_madd where the engine has relaxed
 * SIMD (./relaxed.ts). Binary format: WebAssembly Core Specification 2.0, §5.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

function uleb(n: number, out: number[]): void {
  if (n < 0 || !Number.isInteger(n)) throw new Error(`uleb: ${n}`);
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
}

function sleb(n: number, out: number[]): void {
  if (!Number.isInteger(n)) throw new Error(`sleb: ${n}`);
  n |= 0; // i32 range
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return; }
    out.push(b | 0x80);
  }
}

const f32Bytes = (v: number): number[] => Array.from(new Uint8Array(Float32Array.of(v).buffer));
const f64Bytes = (v: number): number[] => Array.from(new Uint8Array(Float64Array.of(v).buffer));

/** SIMD opcodes (0xFD prefix) used here */
export const S = {
  load: 0x00, load32_splat: 0x09, load64_splat: 0x0a, store: 0x0b, const: 0x0c, shuffle: 0x0d,
  f32x4_splat: 0x13, f64x2_splat: 0x14, f32x4_extract_lane: 0x1f, f32x4_replace_lane: 0x20, f64x2_extract_lane: 0x21,
  f32x4_eq: 0x41, f32x4_lt: 0x43, f32x4_gt: 0x44, f32x4_le: 0x45, f32x4_ge: 0x46,
  not: 0x4d, and: 0x4e, andnot: 0x4f, or: 0x50, xor: 0x51, bitselect: 0x52,
  load32_zero: 0x5c, load64_zero: 0x5d, f32x4_demote_f64x2_zero: 0x5e, f64x2_promote_low_f32x4: 0x5f,
  f32x4_nearest: 0x6a, i32x4_splat: 0x11, i32x4_shl: 0xab, i32x4_add: 0xae, i32x4_trunc_sat_f32x4_s: 0xf8,
  f32x4_abs: 0xe0, f32x4_neg: 0xe1, f32x4_sqrt: 0xe3, f32x4_add: 0xe4, f32x4_sub: 0xe5, f32x4_mul: 0xe6, f32x4_div: 0xe7,
  f32x4_min: 0xe8, f32x4_max: 0xe9, f32x4_pmin: 0xea, f32x4_pmax: 0xeb,
  f64x2_add: 0xf0, f64x2_sub: 0xf1, f64x2_mul: 0xf2, f64x2_div: 0xf3,
  /** relaxed-simd proposal (Node 20: --experimental-wasm-relaxed-simd; on by default from V8 11.4 / Node 22):
   *  f32x4.relaxed_madd(a, b, c) = a·b + c, fused or not as the engine chooses (FMA on x64 with FMA3) */
  f32x4_relaxed_madd: 0x105,
} as const;

/** One function body. Methods append instructions and return `this` for chaining. */
export class Fn {
  readonly code: number[] = [];
  readonly localTypes: ValType[] = [];
  private depth = 0;

  constructor(readonly name: string, readonly params: ValType[], readonly results: ValType[] = []) {}

  /** declare a local; returns its index */
  local(t: ValType): number {
    this.localTypes.push(t);
    return this.params.length + this.localTypes.length - 1;
  }

  private op(...b: number[]): this { this.code.push(...b); return this; }
  private mem(opc: number, offset: number, align: number): this { this.code.push(opc); uleb(align, this.code); uleb(offset, this.code); return this; }
  private simd(opc: number): this { this.code.push(0xfd); uleb(opc, this.code); return this; }

  get(i: number): this { this.code.push(0x20); uleb(i, this.code); return this; }
  set(i: number): this { this.code.push(0x21); uleb(i, this.code); return this; }
  tee(i: number): this { this.code.push(0x22); uleb(i, this.code); return this; }
  i32(v: number): this { this.code.push(0x41); sleb(v, this.code); return this; }
  f32(v: number): this { return this.op(0x43, ...f32Bytes(v)); }
  f64(v: number): this { return this.op(0x44, ...f64Bytes(v)); }
  drop(): this { return this.op(0x1a); }
  select(): this { return this.op(0x1b); }

  // control
  block(): this { this.depth++; return this.op(0x02, 0x40); }
  loop(): this { this.depth++; return this.op(0x03, 0x40); }
  if_(): this { this.depth++; return this.op(0x04, 0x40); }
  else_(): this { return this.op(0x05); }
  end(): this { this.depth--; return this.op(0x0b); }
  br(l: number): this { this.code.push(0x0c); uleb(l, this.code); return this; }
  brIf(l: number): this { this.code.push(0x0d); uleb(l, this.code); return this; }
  ret(): this { return this.op(0x0f); }
  /** call function `i` (its index in the array given to assemble()) */
  call(i: number): this { this.code.push(0x10); uleb(i, this.code); return this; }

  /** `while (!exit) body()`: `exit()` pushes an i32 that ends the loop when non-zero; `body` must advance the state */
  loopUntil(exit: () => void, body: () => void): this {
    this.block(); this.loop();
    exit();
    this.brIf(1);
    body();
    this.br(0);
    this.end(); this.end();
    return this;
  }

  /** `for (i = from; i < limit; i += step) body()` over i32 locals `i` and `limit` (signed compare) */
  forRange(i: number, from: number, limit: number, step: number, body: () => void): this {
    this.i32(from).set(i);
    return this.loopUntil(() => this.get(i).get(limit).geS(), () => { body(); this.get(i).i32(step).add().set(i); });
  }

  // i32
  add(): this { return this.op(0x6a); }
  sub(): this { return this.op(0x6b); }
  mul(): this { return this.op(0x6c); }
  divS(): this { return this.op(0x6d); }
  remS(): this { return this.op(0x6f); }
  and_(): this { return this.op(0x71); }
  or_(): this { return this.op(0x72); }
  shl(): this { return this.op(0x74); }
  shrS(): this { return this.op(0x75); }
  eqz(): this { return this.op(0x45); }
  eq(): this { return this.op(0x46); }
  ne(): this { return this.op(0x47); }
  ltS(): this { return this.op(0x48); }
  gtS(): this { return this.op(0x4a); }
  leS(): this { return this.op(0x4c); }
  geS(): this { return this.op(0x4e); }
  ltU(): this { return this.op(0x49); }
  geU(): this { return this.op(0x4f); }

  // f32 / f64 scalar
  f32load(offset = 0): this { return this.mem(0x2a, offset, 2); }
  f32store(offset = 0): this { return this.mem(0x38, offset, 2); }
  f64load(offset = 0): this { return this.mem(0x2b, offset, 3); }
  f64store(offset = 0): this { return this.mem(0x39, offset, 3); }
  i32load(offset = 0): this { return this.mem(0x28, offset, 2); }
  f32add(): this { return this.op(0x92); }
  f32sub(): this { return this.op(0x93); }
  f32mul(): this { return this.op(0x94); }
  f32gt(): this { return this.op(0x5e); }
  f64add(): this { return this.op(0xa0); }
  f64sub(): this { return this.op(0xa1); }
  f64mul(): this { return this.op(0xa2); }
  f64promote(): this { return this.op(0xbb); }
  f64cvtI32(): this { return this.op(0xb7); }
  f32demote(): this { return this.op(0xb6); }

  // v128
  vload(offset = 0): this { this.simd(S.load); uleb(0, this.code); uleb(offset, this.code); return this; }
  vstore(offset = 0): this { this.simd(S.store); uleb(0, this.code); uleb(offset, this.code); return this; }
  vsplatLoad(offset = 0): this { this.simd(S.load32_splat); uleb(2, this.code); uleb(offset, this.code); return this; }
  vload64Splat(offset = 0): this { this.simd(S.load64_splat); uleb(3, this.code); uleb(offset, this.code); return this; }
  vload64Zero(offset = 0): this { this.simd(S.load64_zero); uleb(3, this.code); uleb(offset, this.code); return this; }
  vconst(bytes: number[]): this { if (bytes.length !== 16) throw new Error('v128.const: 16 bytes'); this.simd(S.const); this.code.push(...bytes); return this; }
  vconstF32(a: number, b: number, c: number, d: number): this { return this.vconst([...f32Bytes(a), ...f32Bytes(b), ...f32Bytes(c), ...f32Bytes(d)]); }
  /** i8x16.shuffle with f32 lanes: lane indices 0–3 from the first operand, 4–7 from the second */
  shuffle32(l0: number, l1: number, l2: number, l3: number): this {
    this.simd(S.shuffle);
    for (const l of [l0, l1, l2, l3]) for (let b = 0; b < 4; b++) this.code.push(4 * l + b);
    return this;
  }
  v(opc: number): this { return this.simd(opc); }
  lane(opc: number, lane: number): this { this.simd(opc); this.code.push(lane); return this; }

  /** the encoded body (locals + code + end) */
  body(): number[] {
    if (this.depth !== 0) throw new Error(`${this.name}: unbalanced blocks (${this.depth})`);
    const out: number[] = [];
    // locals, run-length grouped
    const groups: Array<[number, ValType]> = [];
    for (const t of this.localTypes) {
      const g = groups[groups.length - 1];
      if (g && g[1] === t) g[0]++; else groups.push([1, t]);
    }
    uleb(groups.length, out);
    for (const [n, t] of groups) { uleb(n, out); out.push(t); }
    out.push(...this.code, 0x0b);
    const sized: number[] = [];
    uleb(out.length, sized);
    return [...sized, ...out];
  }
}

function section(id: number, payload: number[]): number[] {
  const out = [id];
  uleb(payload.length, out);
  return out.concat(payload);
}

function name(s: string, out: number[]): void {
  const b = Array.from(new TextEncoder().encode(s));
  uleb(b.length, out);
  out.push(...b);
}

/** Assemble functions into a module that imports memory "e"."m" (shared or not) and exports every function by name. */
export function assemble(fns: Fn[], sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const types: number[] = [];
  uleb(fns.length, types);
  for (const f of fns) {
    types.push(0x60);
    uleb(f.params.length, types); types.push(...f.params);
    uleb(f.results.length, types); types.push(...f.results);
  }
  const imports: number[] = [];
  uleb(1, imports);
  name('e', imports); name('m', imports);
  imports.push(0x02);
  if (sharedMemory) { imports.push(0x03); uleb(0, imports); uleb(65536, imports); } else { imports.push(0x00); uleb(0, imports); }
  const funcs: number[] = [];
  uleb(fns.length, funcs);
  fns.forEach((_, i) => uleb(i, funcs));
  const exps: number[] = [];
  uleb(fns.length, exps);
  fns.forEach((f, i) => { name(f.name, exps); exps.push(0x00); uleb(i, exps); });
  const code: number[] = [];
  uleb(fns.length, code);
  for (const f of fns) code.push(...f.body());
  return Uint8Array.from<number>([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types), ...section(2, imports), ...section(3, funcs), ...section(7, exps), ...section(10, code),
  ]);
}
