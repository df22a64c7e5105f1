/**
 * The one error type the library throws for bad input: a wrong shape, a corrupt file, an
 * unknown preset, a label out of range. The CLI prints its message as one line and exits 2;
 * anything else that escapes is a bug in this project.
 *
 * `where` names the file, tensor or field at fault, so the message can say what is wrong
 * and where without a stack trace.
 */
export class DitMoeError extends Error {
  constructor(message: string, readonly where?: string) {
    super(where ? `${where}: ${message}` : message);
    this.name = 'DitMoeError';
  }
}

/** Throws a DitMoeError unless `cond` holds. */
export function check(cond: unknown, message: string, where?: string): asserts cond {
  if (!cond) throw new DitMoeError(message, where);
}
