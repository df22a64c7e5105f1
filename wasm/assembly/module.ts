/**
 * What the host needs to know about the module itself. The memory is imported (the host's
 * `WebAssembly.Memory`); the module's static data ends at `__heap_base`, and the host's
 * arena starts there.
 */
export function heapBase(): usize {
  return __heap_base;
}

