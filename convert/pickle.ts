/**
 * A safe unpickler for the subset of the pickle format that torch.save containers use (protocols 0-5).
 *
 * Nothing is ever executed: a GLOBAL / STACK_GLOBAL resolves through a caller-supplied table of safe
 * constructors (`PyFunction`); every other global becomes an inert `PyClass`, and calling it (REDUCE, NEWOBJ,
 * OBJ, INST) produces an inert `PyObject` that records the class, the arguments, the BUILD state and any
 * SETITEMS / APPENDS applied to it, so plain fields of e.g. omegaconf DictConfig or argparse.Namespace objects
 * stay readable.
 *
 * Python values map to JS as follows:
 *   None -> null; bool -> boolean; int -> number (bigint when outside +-2^53); float -> number;
 *   str -> string; bytes / bytearray -> Uint8Array;
 *   list and tuple -> Array (a tuple is a frozen-by-convention Array; `isTuple(x)` tells them apart);
 *   dict / OrderedDict / defaultdict -> Map (insertion order kept; int keys stay numbers);
 *   set / frozenset -> Set.
 * BUILD on a Map (e.g. an OrderedDict state dict carrying `_metadata`) stores the state aside: `attrsOf(map)`.
 */

export class PyClass {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string { return `${this.module}.${this.name}`; }
  toString(): string { return `<class ${this.qualname}>`; }
}

/** An instance of a class we do not know: inert record of how it was built. */
export class PyObject {
  /** BUILD state (usually a Map of attribute name -> value; a 2-tuple [dict, slots] for slotted classes) */
  state: unknown = undefined;
  /** items added with SETITEM(S) (dict subclasses) */
  dictItems: Map<unknown, unknown> | undefined;
  /** items added with APPEND(S) (list subclasses) */
  listItems: unknown[] | undefined;
  constructor(readonly cls: PyClass, readonly args: unknown[], readonly kwargs?: Map<unknown, unknown>) {}
  toString(): string { return `<${this.cls.qualname} object>`; }
}

/** A known global with a safe JS implementation. `call` receives the positional arguments. */
export class PyFunction {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call: (args: unknown[]) => unknown,
    /** optional BUILD handler for objects this function created; returns true when handled */
    readonly build?: (obj: unknown, state: unknown) => boolean,
  ) {}
}

export interface UnpickleOptions {
  /** Resolve a global. Return a PyFunction for a safe constructor, or undefined to get an inert PyClass. */
  findGlobal?: (module: string, name: string) => PyFunction | undefined;
  /** Handle BINPERSID / PERSID. Required when the pickle uses persistent ids. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Name used in error messages (e.g. "ckpt.pt:archive/data.pkl"). */
  source?: string;
}

export class PickleTruncatedError extends Error {}

const TUPLE_TAG = Symbol('pyTuple');
const attrs = new WeakMap<object, unknown>();

/** Make an Array that remembers it was a Python tuple. */
export function makeTuple(items: unknown[]): unknown[] {
  Object.defineProperty(items, TUPLE_TAG, { value: true, enumerable: false });
  return items;
}
export function isTuple(x: unknown): boolean {
  return Array.isArray(x) && (x as unknown as Record<symbol, unknown>)[TUPLE_TAG] === true;
}
/** BUILD state applied to a Map/Array/Set (e.g. an OrderedDict's `_metadata`), or undefined. */
export function attrsOf(x: object): unknown {
  return attrs.get(x);
}

const MARK = Symbol('mark');

function setItem(target: unknown, key: unknown, value: unknown, src: string): void {
  if (target instanceof Map) target.set(key, value);
  else if (target instanceof PyObject) (target.dictItems ??= new Map()).set(key, value);
  else throw new Error(`${src}: SETITEM on a ${describe(target)}`);
}

function appendItems(target: unknown, items: unknown[], src: string): void {
  if (Array.isArray(target)) target.push(...items);
  else if (target instanceof PyObject) (target.listItems ??= []).push(...items);
  else if (target instanceof Set) for (const v of items) target.add(v);
  else throw new Error(`${src}: APPEND on a ${describe(target)}`);
}

export function describe(x: unknown): string {
  if (x === null) return 'None';
  if (x instanceof Map) return 'dict';
  if (Array.isArray(x)) return isTuple(x) ? 'tuple' : 'list';
  if (x instanceof PyObject) return x.cls.qualname;
  if (x instanceof PyClass) return `class ${x.qualname}`;
  if (x instanceof PyFunction) return `${x.module}.${x.name}`;
  return typeof x;
}

function intFromBytes(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseTextInt(s: string): number | bigint | boolean {
  const t = s.trim().replace(/L$/, '');
  if (t === '00') return false;
  if (t === '01') return true;
  const v = BigInt(t);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Decode a Python repr'd string literal (protocol 0 STRING): handles the common escapes. */
function unrepr(s: string): string {
  const q = s[0];
  if ((q !== '"' && q !== "'") || s[s.length - 1] !== q) throw new Error(`bad STRING literal ${s.slice(0, 40)}`);
  return s.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|[\\'"nrt0])/g, (_m, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    return ({ n: '\n', r: '\r', t: '\t', '0': '\0' } as Record<string, string>)[e] ?? e;
  });
}

/**
 * Unpickle one pickle starting at `offset`. Returns the value and the offset just after its STOP opcode.
 * Throws PickleTruncatedError when the bytes end before STOP.
 */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}, offset = 0): { value: unknown; end: number } {
  const src = opts.source ?? 'pickle';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  let pos = offset;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new PickleTruncatedError(`${src}: pickle data truncated at byte ${pos} (needs ${n} more)`);
  };
  const u8 = (): number => { need(1); return bytes[pos++]!; };
  const u16 = (): number => { need(2); const v = dv.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = dv.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4); const v = dv.getInt32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = dv.getBigUint64(pos, true); pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${src}: length ${v} too large`);
    return Number(v);
  };
  const take = (n: number): Uint8Array => { need(n); const b = bytes.subarray(pos, pos + n); pos += n; return b; };
  const line = (): string => {
    let e = pos;
    while (e < bytes.length && bytes[e] !== 0x0a) e++;
    if (e >= bytes.length) throw new PickleTruncatedError(`${src}: pickle data truncated in a text line at byte ${pos}`);
    const s = latin1.decode(bytes.subarray(pos, e));
    pos = e + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new Error(`${src}: pickle stack underflow at byte ${pos}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new Error(`${src}: pickle stack underflow at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    if (metastack.length === 0) throw new Error(`${src}: MARK expected at byte ${pos}`);
    stack = metastack.pop()!;
    return items;
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) throw new Error(`${src}: memo key ${i} missing at byte ${pos}`);
    return memo.get(i);
  };
  const findGlobal = (module: string, name: string): unknown => {
    return opts.findGlobal?.(module, name) ?? new PyClass(module, name);
  };
  const call = (fn: unknown, args: unknown[], kwargs?: Map<unknown, unknown>): unknown => {
    if (fn instanceof PyFunction) return fn.call(args);
    if (fn instanceof PyClass) return new PyObject(fn, args, kwargs);
    throw new Error(`${src}: cannot call a ${describe(fn)} at byte ${pos}`);
  };
  const build = (obj: unknown, state: unknown): void => {
    if (obj instanceof PyObject) {
      obj.state = state;
    } else if (obj !== null && typeof obj === 'object') {
      attrs.set(obj, state);
    } else {
      throw new Error(`${src}: BUILD on a ${describe(obj)} at byte ${pos}`);
    }
  };

  for (;;) {
    const opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: { const proto = u8(); if (proto > 5) throw new Error(`${src}: unsupported pickle protocol ${proto}`); break; } // PROTO
      case 0x95: u64(); break; // FRAME: framing is transparent here
      case 0x2e: // STOP
        if (stack.length !== 1 || metastack.length) throw new Error(`${src}: malformed pickle (stack has ${stack.length} items at STOP)`);
        return { value: stack[0], end: pos };
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      // --- memo
      case 0x67: stack.push(memoGet(parseInt(line(), 10))); break; // GET
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x70: memo.set(parseInt(line(), 10), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      // --- constants and numbers
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(intFromBytes(take(u8()))); break; // LONG1
      case 0x8b: { const n = i32(); if (n < 0) throw new Error(`${src}: negative LONG4 length`); stack.push(intFromBytes(take(n))); break; }
      case 0x49: stack.push(parseTextInt(line())); break; // INT
      case 0x4c: stack.push(parseTextInt(line())); break; // LONG
      case 0x47: { need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x46: stack.push(parseFloat(line())); break; // FLOAT
      // --- strings and bytes
      case 0x58: stack.push(utf8.decode(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8.decode(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8.decode(take(u64()))); break; // BINUNICODE8
      case 0x56: stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))); break; // UNICODE (raw-unicode-escape)
      case 0x54: { const n = i32(); stack.push(latin1.decode(take(n))); break; } // BINSTRING (py2 str)
      case 0x55: stack.push(latin1.decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x53: stack.push(unrepr(line().trim())); break; // STRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(take(u64()).slice()); break; // BYTEARRAY8
      case 0x97: throw new Error(`${src}: NEXT_BUFFER (out-of-band pickle buffers) is not supported`);
      case 0x98: break; // READONLY_BUFFER: no-op here
      // --- containers
      case 0x29: stack.push(makeTuple([])); break; // EMPTY_TUPLE
      case 0x74: { const t = makeTuple(popMark()); stack.push(t); break; } // TUPLE
      case 0x85: { const a = pop(); stack.push(makeTuple([a])); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(makeTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(makeTuple([a, b, c])); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const l = popMark(); stack.push(l); break; } // LIST
      case 0x61: { const v = pop(); appendItems(top(), [v], src); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items, src); break; } // APPENDS
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark();
        const m = new Map<unknown, unknown>();
        for (let i = 0; i + 1 < items.length; i += 2) m.set(items[i], items[i + 1]);
        stack.push(m);
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v, src); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        const t = top();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(t, items[i], items[i + 1], src);
        break;
      }
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); appendItems(top(), items, src); break; } // ADDITEMS
      case 0x91: { const fs = new Set(popMark()); stack.push(fs); break; } // FROZENSET
      // --- globals and object construction
      case 0x63: { const module = line(); const name = line(); stack.push(findGlobal(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(); const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new Error(`${src}: STACK_GLOBAL needs two strings`);
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, asArgs(args, src), undefined)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, asArgs(args, src), undefined)); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop(); const args = pop(); const cls = pop();
        stack.push(call(cls, asArgs(args, src), kwargs instanceof Map ? kwargs : undefined));
        break;
      }
      case 0x69: { // INST
        const module = line(); const name = line();
        const args = popMark();
        stack.push(call(findGlobal(module, name), args));
        break;
      }
      case 0x6f: { const items = popMark(); const cls = items.shift(); const o = call(cls, items); stack.push(o); break; } // OBJ
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        build(obj, state);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw new Error(`${src}: persistent id found but no persistent loader given`);
        stack.push(opts.persistentLoad(pid));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!opts.persistentLoad) throw new Error(`${src}: persistent id found but no persistent loader given`);
        stack.push(opts.persistentLoad(pid));
        break;
      }
      case 0x82: case 0x83: case 0x84:
        throw new Error(`${src}: extension-registry opcode 0x${op.toString(16)} (EXT*) at byte ${opPos} is not supported`);
      default:
        throw new Error(`${src}: unknown pickle opcode 0x${op.toString(16)} at byte ${opPos}`);
    }
  }
}

function asArgs(args: unknown, src: string): unknown[] {
  if (Array.isArray(args)) return args;
  if (args === null) return [];
  throw new Error(`${src}: call arguments must be a tuple, got ${describe(args)}`);
}

/**
 * Read a field through dicts, lists and inert objects, e.g. getField(root, 'cfg.model.encoder_dim').
 * Understands omegaconf containers (DictConfig/ListConfig `_content`, value nodes' `_val`) and objects whose
 * BUILD state is an attribute dict (argparse.Namespace and most plain classes).
 */
export function getField(root: unknown, path: string | Array<string | number>): unknown {
  const parts = typeof path === 'string' ? (path === '' ? [] : path.split('.')) : path;
  let cur: unknown = unwrapNode(root);
  for (const part of parts) {
    cur = unwrapNode(child(cur, part));
    if (cur === undefined) return undefined;
  }
  return cur;
}

function objectAttrs(o: PyObject): Map<unknown, unknown> | undefined {
  if (o.state instanceof Map) return o.state;
  if (Array.isArray(o.state) && o.state.length === 2) {
    const m = new Map<unknown, unknown>();
    for (const s of o.state) if (s instanceof Map) for (const [k, v] of s) m.set(k, v);
    return m;
  }
  return undefined;
}

function child(cur: unknown, part: string | number): unknown {
  if (cur instanceof Map) {
    if (cur.has(part)) return cur.get(part);
    const n = typeof part === 'string' && /^-?\d+$/.test(part) ? Number(part) : undefined;
    if (n !== undefined && cur.has(n)) return cur.get(n);
    return undefined;
  }
  if (Array.isArray(cur)) {
    const n = Number(part);
    return Number.isInteger(n) ? cur[n] : undefined;
  }
  if (cur instanceof PyObject) {
    const st = objectAttrs(cur);
    const content = st?.get('_content');
    if (content !== undefined && content !== null) return child(content, part);
    if (cur.dictItems?.has(part)) return cur.dictItems.get(part);
    if (cur.listItems) return child(cur.listItems, part);
    return st ? child(st, part) : undefined;
  }
  return undefined;
}

/** omegaconf value nodes (AnyNode, IntegerNode, ...) hold their value in state `_val`. */
function unwrapNode(x: unknown): unknown {
  if (x instanceof PyObject && x.cls.module.startsWith('omegaconf')) {
    const st = objectAttrs(x);
    if (st?.has('_val')) return st.get('_val');
  }
  return x;
}

/**
 * Convert to plain JSON-like data: Maps -> objects, omegaconf containers -> their content, inert objects ->
 * their attribute dict (with `__class__`). Cycles become "<cycle>".
 */
export function toPlain(x: unknown, seen: Set<unknown> = new Set()): unknown {
  x = unwrapNode(x);
  if (x === null || typeof x !== 'object') return typeof x === 'bigint' ? x.toString() : x;
  if (seen.has(x)) return '<cycle>';
  seen.add(x);
  try {
    if (x instanceof Map) {
      const o: Record<string, unknown> = {};
      for (const [k, v] of x) o[String(k)] = toPlain(v, seen);
      return o;
    }
    if (Array.isArray(x)) return x.map((v) => toPlain(v, seen));
    if (x instanceof Set) return [...x].map((v) => toPlain(v, seen));
    if (x instanceof Uint8Array) return `<${x.length} bytes>`;
    if (x instanceof PyClass) return `<class ${x.qualname}>`;
    if (x instanceof PyObject) {
      const st = objectAttrs(x);
      const content = st?.get('_content');
      if (x.cls.module.startsWith('omegaconf') && content !== undefined) return toPlain(content, seen);
      const o: Record<string, unknown> = { __class__: x.cls.qualname };
      if (x.args.length) o.__args__ = toPlain(x.args, seen);
      if (st) for (const [k, v] of st) o[String(k)] = toPlain(v, seen);
      else if (x.state !== undefined) o.__state__ = toPlain(x.state, seen);
      if (x.dictItems) o.__items__ = toPlain(x.dictItems, seen);
      if (x.listItems) o.__list__ = toPlain(x.listItems, seen);
      return o;
    }
    return String(x);
  } finally {
    seen.delete(x);
  }
}
