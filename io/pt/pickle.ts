/**
 * A pickle writer for exactly what `torch.save` of a state dict produces, byte for byte the
 * way Python's protocol-2 pickler writes it:
 *   PROTO 2; GLOBAL 'collections OrderedDict'; EMPTY_TUPLE; REDUCE          → the state dict
 *   MARK
 *     name; GLOBAL 'torch._utils _rebuild_tensor_v2'                      (BINGET after the first)
 *     MARK
 *       MARK 'storage' GLOBAL 'torch FloatStorage' key 'cpu' numel TUPLE BINPERSID
 *       offset; size tuple; stride tuple; NEWFALSE; OrderedDict() (backward hooks)
 *     TUPLE; REDUCE
 *   SETITEMS                                                               (batches of 1000)
 *   STOP
 * Every string, global and non-empty tuple is memoised (BINPUT, LONG_BINPUT past 255) and
 * repeated strings and globals are fetched back (BINGET), as Python's pickler does, so the
 * opcode stream matches the golden checkpoints'. The state dict's `_metadata` attribute
 * (module versions, written by `BUILD`) is left out: `torch.load` does not need it and
 * `load_state_dict` treats its absence as "current versions"; a dict's `state` is written with
 * BUILD when given. Lists, floats of integral value (PickleFloat) and non-string keys are there
 * for optimiser state dicts: {state: {index: {...}}, param_groups: [{lr, betas, ...}]}.
 */

/** A value the writer can pickle. */
export type PickleValue = null | boolean | number | string | PickleTuple | PickleList | PickleDict | PickleFloat | PickleCall | PicklePersistent | PickleGlobal;

export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}
/** A list: EMPTY_LIST, then APPENDS in batches of 1000 (APPEND for a batch of one). */
export class PickleList {
  constructor(readonly items: PickleValue[]) {}
}
/**
 * A dict (`ordered`: an OrderedDict, pickled as OrderedDict() + SETITEMS). `state`: the
 * object's attributes, set by BUILD after the items (an OrderedDict's `_metadata`, as
 * `module.state_dict()` carries it).
 */
export class PickleDict {
  constructor(readonly entries: [PickleValue, PickleValue][], readonly ordered: boolean, readonly state?: PickleValue) {}
}
/** A Python float even when the value is integral (a plain number that is an integer pickles as int). */
export class PickleFloat {
  constructor(readonly value: number) {}
}
/** `module.name(*args)` via GLOBAL + REDUCE. */
export class PickleCall {
  constructor(readonly module: string, readonly name: string, readonly args: PickleValue[]) {}
}
/** A persistent id (BINPERSID): the tuple is pickled, then the opcode. */
export class PicklePersistent {
  constructor(readonly pid: PickleTuple) {}
}
/** A global (class or function) reference, as a value: GLOBAL 'module\nname\n'. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
}

const BATCHSIZE = 1000;

/** Pickles `value` with protocol 2. */
export function pickle(value: PickleValue): Uint8Array {
  const w = new Writer();
  w.byte(0x80, 2); // PROTO 2
  w.save(value);
  w.byte(0x2e); // STOP
  return w.bytes();
}

class Writer {
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  private memo = new Map<string, number>();
  private enc = new TextEncoder();

  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  private grow(n: number) {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(...bs: number[]) {
    this.grow(bs.length);
    for (const b of bs) this.buf[this.len++] = b;
  }

  private u32(v: number) {
    this.grow(4);
    new DataView(this.buf.buffer).setUint32(this.len, v, true);
    this.len += 4;
  }

  private raw(b: Uint8Array) {
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** BINPUT / LONG_BINPUT the object on top of the stack under the next memo index. */
  private put(key?: string) {
    const idx = this.memo.size;
    this.memo.set(key ?? `#${idx}`, idx);
    if (idx < 256) this.byte(0x71, idx);
    else {
      this.byte(0x72);
      this.u32(idx);
    }
  }

  /** BINGET / LONG_BINGET if `key` was memoised; true when it was. */
  private get(key: string): boolean {
    const idx = this.memo.get(key);
    if (idx === undefined) return false;
    if (idx < 256) this.byte(0x68, idx);
    else {
      this.byte(0x6a);
      this.u32(idx);
    }
    return true;
  }

  private int(v: number) {
    if (v >= 0 && v < 256) this.byte(0x4b, v); // BININT1
    else if (v >= 0 && v < 65536) this.byte(0x4d, v & 0xff, v >> 8); // BININT2
    else if (v >= -0x80000000 && v <= 0x7fffffff) {
      this.byte(0x4a); // BININT
      this.u32(v >>> 0);
    } else {
      // LONG1: little-endian two's complement, as short as the sign allows.
      let b = BigInt(v);
      const out: number[] = [];
      for (;;) {
        out.push(Number(b & 0xffn));
        b >>= 8n;
        if ((b === 0n && !(out[out.length - 1] & 0x80)) || (b === -1n && out[out.length - 1] & 0x80)) break;
      }
      this.byte(0x8a, out.length, ...out);
    }
  }

  private float(v: number) {
    this.byte(0x47); // BINFLOAT, big-endian
    this.grow(8);
    new DataView(this.buf.buffer).setFloat64(this.len, v, false);
    this.len += 8;
  }

  private global(module: string, name: string) {
    const key = `global:${module}\n${name}`;
    if (this.get(key)) return;
    this.byte(0x63);
    this.raw(this.enc.encode(`${module}\n${name}\n`));
    this.put(key);
  }

  save(v: PickleValue): void {
    if (v === null) this.byte(0x4e);
    else if (v === true) this.byte(0x88);
    else if (v === false) this.byte(0x89);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) this.int(v);
      else this.float(v);
    } else if (v instanceof PickleFloat) this.float(v.value);
    else if (typeof v === 'string') {
      const key = `str:${v}`;
      if (this.get(key)) return;
      const b = this.enc.encode(v);
      this.byte(0x58); // BINUNICODE
      this.u32(b.length);
      this.raw(b);
      this.put(key);
    } else if (v instanceof PickleGlobal) this.global(v.module, v.name);
    else if (v instanceof PickleTuple) {
      const n = v.items.length;
      if (n === 0) {
        this.byte(0x29); // EMPTY_TUPLE
        return;
      }
      if (n > 3) this.byte(0x28); // MARK
      for (const item of v.items) this.save(item);
      this.byte(n > 3 ? 0x74 : 0x84 + n); // TUPLE or TUPLE1/2/3
      this.put();
    } else if (v instanceof PickleCall) {
      this.global(v.module, v.name);
      this.save(new PickleTuple(v.args));
      this.byte(0x52); // REDUCE
      this.put();
    } else if (v instanceof PicklePersistent) {
      this.save(v.pid);
      this.byte(0x51); // BINPERSID
    } else if (v instanceof PickleDict) {
      if (v.ordered) {
        this.global('collections', 'OrderedDict');
        this.byte(0x29, 0x52); // EMPTY_TUPLE REDUCE
      } else this.byte(0x7d); // EMPTY_DICT
      this.put();
      for (let i = 0; i < v.entries.length; i += BATCHSIZE) {
        const batch = v.entries.slice(i, i + BATCHSIZE);
        if (batch.length > 1) this.byte(0x28); // MARK
        for (const [k, x] of batch) {
          this.save(k);
          this.save(x);
        }
        this.byte(batch.length > 1 ? 0x75 : 0x73); // SETITEMS or SETITEM
      }
      if (v.state !== undefined) {
        this.save(v.state);
        this.byte(0x62); // BUILD
      }
    } else if (v instanceof PickleList) {
      this.byte(0x5d); // EMPTY_LIST
      this.put();
      for (let i = 0; i < v.items.length; i += BATCHSIZE) {
        const batch = v.items.slice(i, i + BATCHSIZE);
        if (batch.length > 1) this.byte(0x28); // MARK
        for (const x of batch) this.save(x);
        this.byte(batch.length > 1 ? 0x65 : 0x61); // APPENDS or APPEND
      }
    }
  }
}
