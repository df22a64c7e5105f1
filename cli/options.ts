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
