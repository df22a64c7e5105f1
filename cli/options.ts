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
