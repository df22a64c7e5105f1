/**
 * A safe unpickler for PyTorch checkpoints: it builds plain JS values and never runs code.
 *
 * Python's pickle is a little stack machine whose GLOBAL/REDUCE opcodes import and call any
 * Python function, which is how a malicious checkpoint runs `os.system`. Here a global is
 * resolved only if it is on a short allowlist of what `torch.save` writes for tensors and
 * state dicts; any other global is refused with a DitMoeError naming it, at the GLOBAL
 * opcode, before anything could be called. The "calls" that remain are interpreted by hand:
 *   collections.OrderedDict()                       → Map
 *   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta])
 *                                                   → PtTensorRef (a view description; no data)
 *   torch._utils._rebuild_parameter(tensor, requires_grad, hooks[, state]) → the tensor
 *   torch.FloatStorage etc.                         → a storage type marker, used by persistent ids
 *   argparse.Namespace (training scripts' `args`)   → PyObject {className, state}
 *   torch.Size(tuple) (DeepSpeed's param_shapes)    → the tuple
 *   _codecs.encode(text, 'latin1'), builtins.set/frozenset(list) → bytes, PySet (protocol 2's
 *                                                     spelling of bytes and sets; interpreted, not called)
 * Persistent ids ('storage', type, key, location, numel) become PtStorageRef; the caller
 * resolves them to bytes afterwards.
 *
 * Python values map to: None → null, bool → boolean, int → number (bigint beyond 2^53),
 * float → number, str → string, bytes → Uint8Array, list → array, tuple → frozen array,
 * dict and OrderedDict → Map, set → PySet.
 *
 * Opcodes of protocols 0–5 that a checkpoint can contain are supported (torch.save writes
 * protocol 2); the text string opcodes of protocol 0, extension codes and out-of-band
 * buffers are refused. The stack, the mark stack and the memo are bounded by explicit
 * limits, and every length is checked against the bytes that remain, so nothing allocates
 * more than the input justifies.
 */
import { DitMoeError } from '../../core/errors.js';

/** The element types of PyTorch's typed storages that a checkpoint may hold. */
export type StorageDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'U8';

/** A storage class (`torch.FloatStorage`...) named by a persistent id. */
export class PtStorageType {
  constructor(readonly name: string, readonly dtype: StorageDType) {}
}

/** A storage the pickle refers to by key: the zip record `<root>/data/<key>`. */
export class PtStorageRef {
  constructor(readonly key: string, readonly dtype: StorageDType, readonly numel: number, readonly location: string) {}
}

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view into a storage. */
export class PtTensorRef {
  constructor(
    readonly storage: PtStorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** An instance of an allowlisted plain-data class (argparse.Namespace): its attributes. */
export class PyObject {
  state: PyValue = null;
  constructor(readonly className: string) {}
}

export class PySet {
  constructor(readonly items: PyValue[], readonly frozen: boolean) {}
}

/** The attributes a pickle set on a dict with BUILD (an OrderedDict's `_metadata`), by dict. */
export const dictAttributes = new WeakMap<Map<PyValue, PyValue>, PyValue>();

/** An allowlisted global on the stack, before it is "called". */
class PyGlobal {
  constructor(readonly qualified: string) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | Map<PyValue, PyValue>
  | PySet
  | PyObject
  | PtStorageType
  | PtStorageRef
  | PtTensorRef
  | PyGlobal;

/** The storage classes a checkpoint may name, and their element types. */
const STORAGE_TYPES: Record<string, StorageDType> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
  'torch.DoubleStorage': 'F64',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
  'torch.UntypedStorage': 'U8',
  'torch.storage.UntypedStorage': 'U8',
};

/** Every global a checkpoint may name; anything else is refused. */
export const ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'argparse.Namespace',
  'torch.Size', // a tuple of ints (DeepSpeed's param_shapes)
  // Protocol 2 has no opcodes for bytes and sets: Python writes them as calls of these.
  '_codecs.encode',
  'builtins.set',
  'builtins.frozenset',
  ...Object.keys(STORAGE_TYPES),
]);

/** Python 2 module names that protocol ≤ 2 pickles use, as Python 3's fix_imports maps them. */
const PY2_MODULES: Record<string, string> = { __builtin__: 'builtins', copy_reg: 'copyreg' };

/**
 * Explicit bounds (the input's length bounds them too: each push costs at least one byte).
 * maxObjects bounds the containers built (lists, tuples, dicts, sets, objects): each costs
 * ~100 bytes of heap for one byte of pickle (EMPTY_DICT), so 16 MB of EMPTY_DICT would take
 * GBs; a real checkpoint builds under ten per tensor (G/2 with 16 experts, its EMA and AdamW
 * state: ~5·10⁴).
 */
export const PICKLE_LIMITS = { maxStack: 1 << 24, maxMarks: 1 << 16, maxMemo: 1 << 24, maxIntBytes: 64, maxObjects: 1 << 20 };

export interface UnpickleOptions {
  /** Prefixes every error (e.g. "model.pt: data.pkl"). */
  where?: string;
}

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;
type Fail = (what: string) => never;

/** The unpickler's state — the input, the stack, the marks, the memo — and the readers of opcode arguments. */
class Machine {
  readonly dv: DataView;
  readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  readonly stack: Slot[] = [];
  readonly marks: number[] = [];
  readonly memo = new Map<number, PyValue>();
  pos = 0;
  op = 0;
  opAt = 0;
  objects = 0;
  readonly fail: Fail = (what) => {
    throw new DitMoeError(`${what} (opcode 0x${this.op.toString(16).padStart(2, '0')} at byte ${this.opAt})`, this.where);
  };

  constructor(
    readonly bytes: Uint8Array,
    readonly where: string,
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(n: number): void {
    if (!(n >= 0) || this.pos + n > this.bytes.length) this.fail(`needs ${n} more bytes but only ${this.bytes.length - this.pos} remain: the pickle is truncated`);
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }
  u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.dv.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(this.bytes.length)) this.fail(`length ${v} is larger than the whole pickle`);
    return Number(v);
  }
  take(n: number): Uint8Array {
    this.need(n);
    const s = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail('unterminated text argument: the pickle is truncated');
    const s = new TextDecoder('latin1').decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
  text(n: number): string {
    const b = this.take(n);
    try {
      return this.utf8.decode(b);
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }
  push(v: Slot): void {
    if (this.stack.length >= PICKLE_LIMITS.maxStack) this.fail(`stack deeper than ${PICKLE_LIMITS.maxStack}`);
    this.stack.push(v);
  }
  /** Counts a container built; past maxObjects the pickle asks for more memory than any checkpoint needs. */
  made<T>(v: T): T {
    if (++this.objects > PICKLE_LIMITS.maxObjects) this.fail(`builds more than ${PICKLE_LIMITS.maxObjects} containers; no checkpoint holds that many`);
    return v;
  }
  /** The lowest stack index above the innermost mark. */
  floor(): number {
    return this.marks.length ? this.marks[this.marks.length - 1] + 1 : 0;
  }
  pop(): PyValue {
    if (this.stack.length <= this.floor()) this.fail('stack underflow');
    const v = this.stack.pop()!;
    if (v === MARK) this.fail('unexpected mark');
    return v as PyValue;
  }
  top(): PyValue {
    if (this.stack.length <= this.floor()) this.fail('stack underflow');
    return this.stack[this.stack.length - 1] as PyValue;
  }
  /** Pops everything above the last MARK, and the mark. */
  popMark(): PyValue[] {
    if (!this.marks.length) this.fail('no mark on the stack');
    const m = this.marks.pop()!;
    const items = this.stack.splice(m) as PyValue[];
    items.shift(); // the MARK itself
    return items;
  }
  memoPut(idx: number): void {
    if (!this.memo.has(idx) && this.memo.size >= PICKLE_LIMITS.maxMemo) this.fail(`memo larger than ${PICKLE_LIMITS.maxMemo} entries`);
    this.memo.set(idx, this.top());
  }
  memoGet(idx: number): void {
    if (!this.memo.has(idx)) this.fail(`memo entry ${idx} was never stored`);
    this.push(this.memo.get(idx)!);
  }
  tuple(items: PyValue[]): PyValue[] {
    return this.made(Object.freeze(items) as PyValue[]);
  }
  globalRef(written: string, name: string): PyGlobal | PtStorageType {
    const module = Object.hasOwn(PY2_MODULES, written) ? PY2_MODULES[written] : written;
    const q = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(q)) {
      this.fail(`refusing global '${q}': a checkpoint may only name ${[...ALLOWED_GLOBALS].slice(0, 3).join(', ')} and torch storage types` + (/^(os|posix|nt|builtins|subprocess|sys|importlib|runpy|shutil|socket|pickle|codecs|_codecs|io|webbrowser|pty|ctypes)$/.test(module) ? ' (it would run code)' : ' (re-save the checkpoint as a plain state_dict)'));
    }
    return STORAGE_TYPES[q] ? new PtStorageType(q, STORAGE_TYPES[q]) : new PyGlobal(q);
  }
}

const isTuple = (v: PyValue): v is PyValue[] => Array.isArray(v) && Object.isFrozen(v);

function intOf(v: PyValue, what: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(`${what} is not an integer`);
  return v as number;
}

function intsOf(v: PyValue, what: string, fail: Fail): number[] {
  if (!isTuple(v) && !Array.isArray(v)) fail(`${what} is not a tuple`);
  return (v as PyValue[]).map((d) => intOf(d, `${what} element`, fail));
}

/** The allowlisted globals' interpretations: each "call" builds a plain value, nothing runs. */
const CALLS: Record<string, (a: PyValue[], fail: Fail, qualified: string) => PyValue> = {
  'collections.OrderedDict': (a, fail) => {
    if (a.length !== 0) fail('OrderedDict(...) with arguments is not supported');
    return new Map();
  },
  'torch._utils._rebuild_tensor_v2': (a, fail) => {
    if (a.length !== 6 && a.length !== 7) fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${a.length}`);
    const [storage, offset, size, stride] = a;
    if (!(storage instanceof PtStorageRef)) fail(`_rebuild_tensor_v2: first argument is ${describe(storage)}, not a storage`);
    const shape = intsOf(size, '_rebuild_tensor_v2: size', fail);
    const strides = intsOf(stride, '_rebuild_tensor_v2: stride', fail);
    if (shape.length !== strides.length) fail(`_rebuild_tensor_v2: size has ${shape.length} dimensions but stride has ${strides.length}`);
    if (shape.length > 64) fail(`_rebuild_tensor_v2: ${shape.length} dimensions`);
    if (shape.some((d) => d < 0) || strides.some((s) => s < 0)) fail('_rebuild_tensor_v2: negative size or stride');
    const off = intOf(offset, '_rebuild_tensor_v2: storage offset', fail);
    if (off < 0) fail('_rebuild_tensor_v2: negative storage offset');
    return new PtTensorRef(storage as PtStorageRef, off, shape, strides);
  },
  'torch._utils._rebuild_parameter': (a, fail) => {
    if (a.length !== 3 || !(a[0] instanceof PtTensorRef)) fail('_rebuild_parameter takes (tensor, requires_grad, hooks)');
    return a[0];
  },
  // A Parameter with Python attributes (the 4th argument), which a state dict does not need.
  'torch._utils._rebuild_parameter_with_state': (a, fail) => {
    if (a.length !== 4 || !(a[0] instanceof PtTensorRef)) fail('_rebuild_parameter_with_state takes (tensor, requires_grad, hooks, state)');
    return a[0];
  },
  // bytes in protocol 2: _codecs.encode(text, 'latin1'), each code point one byte.
  '_codecs.encode': (a, fail) => {
    const [s, codec] = a;
    if (a.length !== 2 || typeof s !== 'string' || (codec !== 'latin1' && codec !== 'latin-1')) fail('_codecs.encode is only accepted as (text, \'latin1\'), the way bytes are pickled');
    const b = new Uint8Array((s as string).length);
    for (let i = 0; i < b.length; i++) {
      const c = (s as string).charCodeAt(i);
      if (c > 255) fail('_codecs.encode: text is not latin-1');
      b[i] = c;
    }
    return b;
  },
  'builtins.set': (a, fail, q) => pySet(a, fail, q),
  'builtins.frozenset': (a, fail, q) => pySet(a, fail, q),
  'torch.Size': (a, fail) => {
    if (a.length !== 1) fail('torch.Size takes one tuple');
    return Object.freeze(intsOf(a[0], 'torch.Size', fail)) as PyValue[]; // a tuple, as frozen arrays are
  },
  'argparse.Namespace': (a, fail) => {
    if (a.length !== 0) fail('argparse.Namespace(...) with positional arguments is not supported');
    return new PyObject('argparse.Namespace');
  },
};

function pySet(a: PyValue[], fail: Fail, qualified: string): PySet {
  const items = a.length === 0 ? [] : a[0];
  if (a.length > 1 || !Array.isArray(items)) fail(`${qualified} takes one list`);
  return new PySet([...(items as PyValue[])], qualified === 'builtins.frozenset');
}

/** Interprets a call of an allowlisted global; nothing else can be called. */
function call(m: Machine, fn: PyValue, args: PyValue): PyValue {
  if (!(fn instanceof PyGlobal)) m.fail(`cannot call ${describe(fn)}: only allowlisted globals are callable`);
  if (!isTuple(args)) m.fail('call arguments are not a tuple');
  const q = (fn as PyGlobal).qualified;
  const interpret = Object.hasOwn(CALLS, q) ? CALLS[q] : undefined;
  if (!interpret) return m.fail(`${q} is not callable`);
  return m.made(interpret(args as PyValue[], m.fail, q));
}

/** One opcode: reads its arguments, changes the stack; STOP returns the result as `{ done }`. */
type Handler = (m: Machine) => { done: PyValue } | void;

const refuse = (why: string): Handler => (m) => m.fail(why);

/** Protocols 0–5, by opcode byte. */
const OPCODES: Record<number, Handler> = {
  0x80: (m) => { // PROTO
    if (m.u8() > 5) m.fail('pickle protocol newer than 5');
  },
  0x95: (m) => void m.u64(), // FRAME: a length hint only
  0x2e: (m) => ({ done: m.pop() }), // STOP
  0x28: (m) => { // MARK
    if (m.marks.length >= PICKLE_LIMITS.maxMarks) m.fail(`more than ${PICKLE_LIMITS.maxMarks} nested marks`);
    m.marks.push(m.stack.length);
    m.push(MARK);
  },
  0x30: (m) => { // POP
    if (m.stack.length && m.stack[m.stack.length - 1] === MARK && m.marks.length && m.marks[m.marks.length - 1] === m.stack.length - 1) {
      m.marks.pop();
      m.stack.pop();
    } else m.pop();
  },
  0x31: (m) => void m.popMark(), // POP_MARK
  0x32: (m) => m.push(m.top()), // DUP
  // Numbers.
  0x4a: (m) => m.push(m.i32()), // BININT
  0x4b: (m) => m.push(m.u8()), // BININT1
  0x4d: (m) => m.push(m.u16()), // BININT2
  0x8a: (m) => longBytes(m, m.u8()), // LONG1
  0x8b: (m) => longBytes(m, m.u32()), // LONG4
  0x49: (m) => { // INT (text)
    const s = m.line().trim();
    if (s === '00' || s === '01') m.push(s === '01');
    else m.push(parseIntText(s, m.fail));
  },
  0x4c: (m) => m.push(parseIntText(m.line().trim().replace(/L$/, ''), m.fail)), // LONG (text)
  0x46: (m) => { // FLOAT (text)
    const s = m.line().trim();
    const v = Number(s);
    if (s === '' || (Number.isNaN(v) && !/^[+-]?nan$/i.test(s))) m.fail(`bad float '${s.slice(0, 20)}'`);
    m.push(v);
  },
  0x47: (m) => { // BINFLOAT: big-endian
    m.need(8);
    m.push(m.dv.getFloat64(m.pos, false));
    m.pos += 8;
  },
  0x4e: (m) => m.push(null), // NONE
  0x88: (m) => m.push(true), // NEWTRUE
  0x89: (m) => m.push(false), // NEWFALSE
  // Strings and bytes.
  0x58: (m) => m.push(m.text(m.u32())), // BINUNICODE
  0x8c: (m) => m.push(m.text(m.u8())), // SHORT_BINUNICODE
  0x8d: (m) => m.push(m.text(m.u64())), // BINUNICODE8
  0x54: (m) => m.push(new TextDecoder('latin1').decode(m.take(m.i32()))), // BINSTRING (Python 2 str): latin-1
  0x55: (m) => m.push(new TextDecoder('latin1').decode(m.take(m.u8()))), // SHORT_BINSTRING
  0x42: (m) => m.push(m.take(m.u32()).slice()), // BINBYTES
  0x43: (m) => m.push(m.take(m.u8()).slice()), // SHORT_BINBYTES
  0x8e: (m) => m.push(m.take(m.u64()).slice()), // BINBYTES8
  0x96: (m) => m.push(m.take(m.u64()).slice()), // BYTEARRAY8
  // Containers.
  0x29: (m) => m.push(m.tuple([])), // EMPTY_TUPLE
  0x74: (m) => m.push(m.tuple(m.popMark())), // TUPLE
  0x85: (m) => tupleN(m, 1), // TUPLE1
  0x86: (m) => tupleN(m, 2), // TUPLE2
  0x87: (m) => tupleN(m, 3), // TUPLE3
  0x5d: (m) => m.push(m.made([])), // EMPTY_LIST
  0x6c: (m) => m.push(m.made(m.popMark())), // LIST
  0x61: (m) => { // APPEND
    const v = m.pop();
    listOf(m.top(), m.fail).push(v);
  },
  0x65: (m) => { // APPENDS
    const items = m.popMark();
    const list = listOf(m.top(), m.fail);
    for (const v of items) list.push(v); // a loop: push(...items) overflows the call stack past ~10⁵ items
  },
  0x7d: (m) => m.push(m.made(new Map())), // EMPTY_DICT
  0x64: (m) => { // DICT
    const items = m.popMark();
    m.push(setItems(m.made(new Map()), items, m.fail));
  },
  0x73: (m) => { // SETITEM
    const v = m.pop();
    const k = m.pop();
    setItems(m.top(), [k, v], m.fail);
  },
  0x75: (m) => { // SETITEMS
    const items = m.popMark();
    setItems(m.top(), items, m.fail);
  },
  0x8f: (m) => m.push(m.made(new PySet([], false))), // EMPTY_SET
  0x90: (m) => { // ADDITEMS
    const items = m.popMark();
    const s = m.top();
    if (!(s instanceof PySet) || s.frozen) m.fail(`ADDITEMS on ${describe(s)}`);
    for (const v of items) (s as PySet).items.push(v); // not push(...items): that overflows the call stack past ~10⁵ items
  },
  0x91: (m) => m.push(m.made(new PySet(m.popMark(), true))), // FROZENSET
  // Memo.
  0x68: (m) => m.memoGet(m.u8()), // BINGET
  0x6a: (m) => m.memoGet(m.u32()), // LONG_BINGET
  0x67: (m) => m.memoGet(parseIndex(m.line(), m.fail)), // GET (text)
  0x71: (m) => m.memoPut(m.u8()), // BINPUT
  0x72: (m) => m.memoPut(m.u32()), // LONG_BINPUT
  0x70: (m) => m.memoPut(parseIndex(m.line(), m.fail)), // PUT (text)
  0x94: (m) => m.memoPut(m.memo.size), // MEMOIZE
  // Globals and calls: only the allowlist.
  0x63: (m) => { // GLOBAL
    const module = m.line();
    const name = m.line();
    m.push(m.globalRef(module, name));
  },
  0x93: (m) => { // STACK_GLOBAL
    const name = m.pop();
    const module = m.pop();
    if (typeof module !== 'string' || typeof name !== 'string') m.fail('STACK_GLOBAL needs two strings');
    m.push(m.globalRef(module as string, name as string));
  },
  0x69: (m) => { // INST: a global named inline, called with the items above the mark
    const module = m.line();
    const name = m.line();
    const g = m.globalRef(module, name);
    m.push(call(m, g, m.tuple(m.popMark())));
  },
  0x6f: (m) => { // OBJ: the class is the first item above the mark
    const items = m.popMark();
    if (!items.length) m.fail('OBJ without a class');
    m.push(call(m, items[0], m.tuple(items.slice(1))));
  },
  0x52: (m) => { // REDUCE
    const args = m.pop();
    const fn = m.pop();
    m.push(call(m, fn, args));
  },
  0x81: (m) => { // NEWOBJ: cls.__new__(cls, *args)
    const args = m.pop();
    const cls = m.pop();
    m.push(call(m, cls, args));
  },
  0x92: (m) => { // NEWOBJ_EX
    const kwargs = m.pop();
    const args = m.pop();
    const cls = m.pop();
    if (!(kwargs instanceof Map) || kwargs.size) m.fail('NEWOBJ_EX with keyword arguments is not supported');
    m.push(call(m, cls, args));
  },
  0x62: (m) => { // BUILD: obj.__setstate__(state) or obj.__dict__.update(state)
    const state = m.pop();
    const obj = m.top();
    if (obj instanceof PyObject) obj.state = state;
    else if (obj instanceof Map) dictAttributes.set(obj, state); // an OrderedDict's attributes: state_dict()._metadata
    // torch.nn.Parameter state on old pickles: not needed.
    else if (!(obj instanceof PtTensorRef)) m.fail(`BUILD on ${describe(obj)}`);
  },
  // Persistent ids: storages.
  0x51: (m) => m.push(persistentLoad(m.pop(), m.fail)), // BINPERSID
  0x50: refuse('text persistent ids (PERSID) are not used by torch.save'),
  0x53: refuse('protocol-0 text strings are not supported (torch.save writes protocol 2)'), // STRING
  0x56: refuse('protocol-0 text strings are not supported (torch.save writes protocol 2)'), // UNICODE
  0x82: refuse('extension-registry opcodes (EXT1/2/4) are not supported: they name globals indirectly'),
  0x83: refuse('extension-registry opcodes (EXT1/2/4) are not supported: they name globals indirectly'),
  0x84: refuse('extension-registry opcodes (EXT1/2/4) are not supported: they name globals indirectly'),
  0x97: refuse('out-of-band buffers (protocol 5) are not supported'),
  0x98: refuse('out-of-band buffers (protocol 5) are not supported'),
};

/** LONG1/LONG4: a little-endian two's complement integer of n bytes. */
function longBytes(m: Machine, n: number): void {
  if (n > PICKLE_LIMITS.maxIntBytes) m.fail(`integer of ${n} bytes`);
  m.push(littleInt(m.take(n)));
}

/** TUPLE1/2/3: the top n items as a tuple. */
function tupleN(m: Machine, n: number): void {
  const items: PyValue[] = [];
  for (let i = 0; i < n; i++) items.unshift(m.pop());
  m.push(m.tuple(items));
}

/** Turns a Python pickle into JS values, refusing every global not on the allowlist. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  const m = new Machine(bytes, opts.where ?? 'pickle');
  for (;;) {
    m.opAt = m.pos;
    if (m.pos >= bytes.length) {
      m.op = 0;
      m.fail('the pickle ends without a STOP opcode: truncated');
    }
    m.op = bytes[m.pos++];
    const handler = Object.hasOwn(OPCODES, m.op) ? OPCODES[m.op] : undefined;
    if (!handler) m.fail(`unknown opcode 0x${m.op.toString(16)}: not a pickle, or damaged`);
    const r = handler!(m);
    if (r) return r.done;
  }
}

/** ('storage', storage_type, key, location, numel) → PtStorageRef. */
function persistentLoad(pid: PyValue, fail: (what: string) => never): PtStorageRef {
  if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') fail(`persistent id ${describe(pid)} is not ('storage', type, key, location, numel)`);
  const [, type, key, location, numel] = pid as PyValue[];
  if (!(type instanceof PtStorageType)) fail(`persistent id names ${describe(type)}, not a storage type`);
  if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key)) fail(`storage key ${describe(key)} is not a simple name`);
  if (typeof location !== 'string') fail(`storage location ${describe(location)} is not a string`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) fail(`storage size ${describe(numel)} is not a non-negative integer`);
  return new PtStorageRef(key as string, (type as PtStorageType).dtype, numel as number, location as string);
}

function listOf(v: PyValue, fail: (what: string) => never): PyValue[] {
  if (!Array.isArray(v) || Object.isFrozen(v)) fail(`APPEND to ${describe(v)}, not a list`);
  return v as PyValue[];
}

function setItems(d: PyValue, items: PyValue[], fail: (what: string) => never): Map<PyValue, PyValue> {
  if (!(d instanceof Map)) fail(`SETITEM on ${describe(d)}, not a dict`);
  if (items.length % 2) fail('odd number of items for a dict');
  const m = d as Map<PyValue, PyValue>;
  for (let i = 0; i < items.length; i += 2) m.set(items[i], items[i + 1]);
  return m;
}

/** Little-endian two's complement integer bytes (LONG1/LONG4) → number, or bigint past 2^53. */
function littleInt(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseIntText(s: string, fail: (what: string) => never): number | bigint {
  if (!/^[+-]?\d{1,150}$/.test(s)) fail(`bad integer '${s.slice(0, 20)}'`);
  const v = BigInt(s);
  return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function parseIndex(s: string, fail: (what: string) => never): number {
  if (!/^\d{1,9}$/.test(s.trim())) fail(`bad memo index '${s.slice(0, 20)}'`);
  return Number(s.trim());
}

/** A short description of a value for error messages. */
export function describe(v: PyValue | undefined): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof Uint8Array) return `bytes[${v.length}]`;
  if (Array.isArray(v)) return Object.isFrozen(v) ? `a tuple of ${v.length}` : `a list of ${v.length}`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (v instanceof PtTensorRef) return 'a tensor';
  if (v instanceof PtStorageRef) return 'a storage';
  if (v instanceof PtStorageType) return v.name;
  if (v instanceof PyObject) return `a ${v.className}`;
  if (v instanceof PySet) return 'a set';
  if (v instanceof PyGlobal) return v.qualified;
  return typeof v;
}
