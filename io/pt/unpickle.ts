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
import { DitMoeError } from '../../ref/errors.js';

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

/** Turns a Python pickle into JS values, refusing every global not on the allowlist. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  const where = opts.where ?? 'pickle';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  let pos = 0;
  let op = 0;
  let opAt = 0;

  const fail = (what: string): never => {
    throw new DitMoeError(`${what} (opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opAt})`, where);
  };
  const need = (n: number) => {
    if (!(n >= 0) || pos + n > bytes.length) fail(`needs ${n} more bytes but only ${bytes.length - pos} remain: the pickle is truncated`);
  };
  const u8 = () => {
    need(1);
    return bytes[pos++];
  };
  const u16 = () => {
    need(2);
    const v = dv.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4);
    const v = dv.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`length ${v} is larger than the whole pickle`);
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    const s = bytes.subarray(pos, pos + n);
    pos += n;
    return s;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated text argument: the pickle is truncated');
    const s = new TextDecoder('latin1').decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const text = (n: number) => {
    const b = take(n);
    try {
      return utf8.decode(b);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const push = (v: Slot) => {
    if (stack.length >= PICKLE_LIMITS.maxStack) fail(`stack deeper than ${PICKLE_LIMITS.maxStack}`);
    stack.push(v);
  };
  let objects = 0;
  /** Counts a container built; past maxObjects the pickle asks for more memory than any checkpoint needs. */
  const made = <T>(v: T): T => {
    if (++objects > PICKLE_LIMITS.maxObjects) fail(`builds more than ${PICKLE_LIMITS.maxObjects} containers; no checkpoint holds that many`);
    return v;
  };
  /** The lowest stack index above the innermost mark. */
  const floor = () => (marks.length ? marks[marks.length - 1] + 1 : 0);
  const pop = (): PyValue => {
    if (stack.length <= floor()) fail('stack underflow');
    const v = stack.pop()!;
    if (v === MARK) fail('unexpected mark');
    return v as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length <= floor()) fail('stack underflow');
    return stack[stack.length - 1] as PyValue;
  };
  /** Pops everything above the last MARK, and the mark. */
  const popMark = (): PyValue[] => {
    if (!marks.length) fail('no mark on the stack');
    const m = marks.pop()!;
    const items = stack.splice(m) as PyValue[];
    items.shift(); // the MARK itself
    return items;
  };
  const memoPut = (idx: number) => {
    if (!memo.has(idx) && memo.size >= PICKLE_LIMITS.maxMemo) fail(`memo larger than ${PICKLE_LIMITS.maxMemo} entries`);
    memo.set(idx, top());
  };
  const memoGet = (idx: number) => {
    if (!memo.has(idx)) fail(`memo entry ${idx} was never stored`);
    push(memo.get(idx)!);
  };
  const globalRef = (written: string, name: string): PyGlobal | PtStorageType => {
    const module = Object.hasOwn(PY2_MODULES, written) ? PY2_MODULES[written] : written;
    const q = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(q)) {
      fail(`refusing global '${q}': a checkpoint may only name ${[...ALLOWED_GLOBALS].slice(0, 3).join(', ')} and torch storage types` + (/^(os|posix|nt|builtins|subprocess|sys|importlib|runpy|shutil|socket|pickle|codecs|_codecs|io|webbrowser|pty|ctypes)$/.test(module) ? ' (it would run code)' : ' (re-save the checkpoint as a plain state_dict)'));
    }
    return STORAGE_TYPES[q] ? new PtStorageType(q, STORAGE_TYPES[q]) : new PyGlobal(q);
  };
  const isTuple = (v: PyValue): v is PyValue[] => Array.isArray(v) && Object.isFrozen(v);
  const tuple = (items: PyValue[]) => made(Object.freeze(items) as PyValue[]);
  const intOf = (v: PyValue, what: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(`${what} is not an integer`);
    return v as number;
  };
  const intsOf = (v: PyValue, what: string): number[] => {
    if (!isTuple(v) && !Array.isArray(v)) fail(`${what} is not a tuple`);
    return (v as PyValue[]).map((d) => intOf(d, `${what} element`));
  };

  /** Interprets a call of an allowlisted global; nothing else can be called. */
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) fail(`cannot call ${describe(fn)}: only allowlisted globals are callable`);
    if (!isTuple(args)) fail('call arguments are not a tuple');
    const a = args as PyValue[];
    switch ((fn as PyGlobal).qualified) {
      case 'collections.OrderedDict':
        if (a.length !== 0) fail('OrderedDict(...) with arguments is not supported');
        return new Map();
      case 'torch._utils._rebuild_tensor_v2': {
        if (a.length !== 6 && a.length !== 7) fail(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${a.length}`);
        const [storage, offset, size, stride] = a;
        if (!(storage instanceof PtStorageRef)) fail(`_rebuild_tensor_v2: first argument is ${describe(storage)}, not a storage`);
        const shape = intsOf(size, '_rebuild_tensor_v2: size');
        const strides = intsOf(stride, '_rebuild_tensor_v2: stride');
        if (shape.length !== strides.length) fail(`_rebuild_tensor_v2: size has ${shape.length} dimensions but stride has ${strides.length}`);
        if (shape.length > 64) fail(`_rebuild_tensor_v2: ${shape.length} dimensions`);
        if (shape.some((d) => d < 0) || strides.some((s) => s < 0)) fail('_rebuild_tensor_v2: negative size or stride');
        const off = intOf(offset, '_rebuild_tensor_v2: storage offset');
        if (off < 0) fail('_rebuild_tensor_v2: negative storage offset');
        return new PtTensorRef(storage as PtStorageRef, off, shape, strides);
      }
      case 'torch._utils._rebuild_parameter':
        if (a.length !== 3 || !(a[0] instanceof PtTensorRef)) fail('_rebuild_parameter takes (tensor, requires_grad, hooks)');
        return a[0];
      case 'torch._utils._rebuild_parameter_with_state':
        // A Parameter with Python attributes (the 4th argument), which a state dict does not need.
        if (a.length !== 4 || !(a[0] instanceof PtTensorRef)) fail('_rebuild_parameter_with_state takes (tensor, requires_grad, hooks, state)');
        return a[0];
      case '_codecs.encode': {
        // bytes in protocol 2: _codecs.encode(text, 'latin1'), each code point one byte.
        const [s, codec] = a;
        if (a.length !== 2 || typeof s !== 'string' || (codec !== 'latin1' && codec !== 'latin-1')) fail('_codecs.encode is only accepted as (text, \'latin1\'), the way bytes are pickled');
        const b = new Uint8Array((s as string).length);
        for (let i = 0; i < b.length; i++) {
          const c = (s as string).charCodeAt(i);
          if (c > 255) fail('_codecs.encode: text is not latin-1');
          b[i] = c;
        }
        return b;
      }
      case 'builtins.set':
      case 'builtins.frozenset': {
        const items = a.length === 0 ? [] : a[0];
        if (a.length > 1 || !Array.isArray(items)) fail(`${(fn as PyGlobal).qualified} takes one list`);
        return new PySet([...(items as PyValue[])], (fn as PyGlobal).qualified === 'builtins.frozenset');
      }
      case 'argparse.Namespace':
        if (a.length !== 0) fail('argparse.Namespace(...) with positional arguments is not supported');
        return new PyObject('argparse.Namespace');
      default:
        return fail(`${(fn as PyGlobal).qualified} is not callable`);
    }
  };

  for (;;) {
    opAt = pos;
    if (pos >= bytes.length) {
      op = 0;
      fail('the pickle ends without a STOP opcode: truncated');
    }
    op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol newer than 5');
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        {
          const v = pop();
          return v;
        }
      case 0x28: // MARK
        if (marks.length >= PICKLE_LIMITS.maxMarks) fail(`more than ${PICKLE_LIMITS.maxMarks} nested marks`);
        marks.push(stack.length);
        push(MARK);
        break;
      case 0x30: // POP
        if (stack.length && stack[stack.length - 1] === MARK && marks.length && marks[marks.length - 1] === stack.length - 1) {
          marks.pop();
          stack.pop();
        } else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      // Numbers.
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : u32();
        if (n > PICKLE_LIMITS.maxIntBytes) fail(`integer of ${n} bytes`);
        push(littleInt(take(n)));
        break;
      }
      case 0x49: {
        // INT (text)
        const s = line().trim();
        if (s === '00' || s === '01') push(s === '01');
        else push(parseIntText(s, fail));
        break;
      }
      case 0x4c: // LONG (text)
        push(parseIntText(line().trim().replace(/L$/, ''), fail));
        break;
      case 0x46: {
        // FLOAT (text)
        const s = line().trim();
        const v = Number(s);
        if (s === '' || (Number.isNaN(v) && !/^[+-]?nan$/i.test(s))) fail(`bad float '${s.slice(0, 20)}'`);
        push(v);
        break;
      }
      case 0x47: // BINFLOAT: big-endian
        need(8);
        push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      // Strings and bytes.
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x54: // BINSTRING (Python 2 str): latin-1
        push(new TextDecoder('latin1').decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(new TextDecoder('latin1').decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(take(u64()).slice());
        break;
      // Containers.
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x74: // TUPLE
        push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: PyValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        push(tuple(items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push(made([]));
        break;
      case 0x6c: // LIST
        push(made(popMark()));
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        listOf(top(), fail).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = listOf(top(), fail);
        for (const v of items) list.push(v); // a loop: push(...items) overflows the call stack past ~10⁵ items
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(made(new Map()));
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        push(setItems(made(new Map()), items, fail));
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v], fail);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items, fail);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(made(new PySet([], false)));
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet) || s.frozen) fail(`ADDITEMS on ${describe(s)}`);
        for (const v of items) (s as PySet).items.push(v); // not push(...items): that overflows the call stack past ~10⁵ items
        break;
      }
      case 0x91: // FROZENSET
        push(made(new PySet(popMark(), true)));
        break;
      // Memo.
      case 0x68: // BINGET
        memoGet(u8());
        break;
      case 0x6a: // LONG_BINGET
        memoGet(u32());
        break;
      case 0x67: // GET (text)
        memoGet(parseIndex(line(), fail));
        break;
      case 0x71: // BINPUT
        memoPut(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32());
        break;
      case 0x70: // PUT (text)
        memoPut(parseIndex(line(), fail));
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      // Globals and calls: only the allowlist.
      case 0x63: {
        // GLOBAL
        const module = line();
        const name = line();
        push(globalRef(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(globalRef(module as string, name as string));
        break;
      }
      case 0x69: {
        // INST: a global named inline, called with the items above the mark
        const module = line();
        const name = line();
        const g = globalRef(module, name);
        push(made(call(g, tuple(popMark()))));
        break;
      }
      case 0x6f: {
        // OBJ: the class is the first item above the mark
        const items = popMark();
        if (!items.length) fail('OBJ without a class');
        push(made(call(items[0], tuple(items.slice(1)))));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        push(made(call(fn, args)));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        push(made(call(cls, args)));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof Map) || kwargs.size) fail('NEWOBJ_EX with keyword arguments is not supported');
        push(made(call(cls, args)));
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state) or obj.__dict__.update(state)
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        else if (obj instanceof Map) {
          // An OrderedDict's attributes (state_dict()._metadata, module versions): not needed.
        } else if (obj instanceof PtTensorRef) {
          // torch.nn.Parameter state on old pickles: ignored.
        } else fail(`BUILD on ${describe(obj)}`);
        break;
      }
      // Persistent ids: storages.
      case 0x51: // BINPERSID
        push(persistentLoad(pop(), fail));
        break;
      case 0x50: // PERSID (text)
        fail('text persistent ids (PERSID) are not used by torch.save');
        break;
      case 0x53: // STRING
      case 0x56: // UNICODE
        fail('protocol-0 text strings are not supported (torch.save writes protocol 2)');
        break;
      case 0x82:
      case 0x83:
      case 0x84:
        fail('extension-registry opcodes (EXT1/2/4) are not supported: they name globals indirectly');
        break;
      case 0x97:
      case 0x98:
        fail('out-of-band buffers (protocol 5) are not supported');
        break;
      default:
        fail(`unknown opcode 0x${op.toString(16)}: not a pickle, or damaged`);
    }
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
