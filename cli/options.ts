/** Option parsers shared by the commands: a bad value is a one-line error naming the option. */
import { DitMoeError } from '../ref/errors.js';

export function positiveInt(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new DitMoeError(`'${v}' is not a positive integer`, name);
    return n;
  };
}
