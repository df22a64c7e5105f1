/**
 * The few WebAssembly JS-API types the backend uses. The project compiles with lib ES2022
 * and @types/node 20, neither of which declares `WebAssembly`; these local declarations
 * avoid pulling the DOM lib into every file.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}

/** An opaque compiled module (WebAssembly.Module). */
export interface WasmModule {
  readonly __wasmModule?: never;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export type WasmBytes = ArrayBuffer | ArrayBufferView;

interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: WasmBytes) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance;
  validate(bytes: WasmBytes): boolean;
  compile(bytes: WasmBytes): Promise<WasmModule>;
}

/** The runtime's WebAssembly object, or undefined where there is none. */
export function webAssembly(): WasmApi | undefined {
  return (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
}
