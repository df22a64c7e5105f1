/** Asserting our own error: `f` throws a DitMoeError of one line matching every fragment or pattern. */
import { expect } from 'vitest';
import { DitMoeError } from '../core/errors.js';

export function expectOurError(f: () => unknown, ...matchers: (string | RegExp)[]): DitMoeError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(DitMoeError);
  const msg = (err as Error).message;
  expect(msg.split('\n')).toHaveLength(1);
  for (const m of matchers) {
    if (typeof m === 'string') expect(msg).toContain(m);
    else expect(msg).toMatch(m);
  }
  return err as DitMoeError;
}
