/** Option parsers shared by the commands: a bad value is a one-line error naming the option. */
import { DitMoeError } from '../core/errors.js';

export function positiveInt(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new DitMoeError(`'${v}' is not a positive integer`, name);
    return n;
  };
}

/** A number (an integer when `integer`), or a one-line error naming the option. */
export function numberArg(name: string, integer = false): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new DitMoeError(`'${v}' is not ${integer ? 'an integer' : 'a number'}`, name);
    return n;
  };
}

/** 'on' or 'off' as a boolean, or a one-line error naming the option. */
export function onOff(name: string): (v: string) => boolean {
  return (v: string) => {
    if (v === 'on') return true;
    if (v === 'off') return false;
    throw new DitMoeError(`'${v}' is neither on nor off`, name);
  };
}

/** An integer ≥ 0 (a seed, an index), or a one-line error naming the option. */
export function nonNegativeInt(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new DitMoeError(`'${v}' is not an integer ≥ 0`, name);
    return n;
  };
}

/** Options given on the command line (not defaults) that the chosen mode ignores: an error naming the first, since an ignored option is a silent surprise. */
export function refuseIgnored(given: (key: string) => boolean, options: [key: string, flag: string][], why: string): void {
  for (const [key, flag] of options) if (given(key)) throw new DitMoeError(`has no effect ${why}`, flag);
}
