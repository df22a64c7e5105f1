/**
 * io/modelFile.ts: a model from a file's bytes, as the explorer page reads dropped files.
 * The .pt of the tiny golden model (a bare float32 state dict, no configuration: inferred from
 * the shapes, the heads given) gives the safetensors model's forward exactly; bytes that are no model, or are
 * cut short, are a DitMoeError naming the file.
 */
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GOLDEN_DIR } from './golden.js';
import { loadModelFromBytes } from '../io/modelFile.js';
import { refKernels } from '../ref/refKernels.js';
import { DitMoeError } from '../core/errors.js';
import { makeRng } from '../ref/diffusion/rng.js';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, f)));

describe('loadModelFromBytes', () => {
  it('the .pt and the safetensors of the tiny model are the same model', () => {
    const st = loadModelFromBytes(read('tiny.model.safetensors'), 'tiny.model.safetensors', refKernels);
    // a bare state dict in the timm layout does not show the number of heads: given, as the page's configuration field does
    expect(() => loadModelFromBytes(read('tiny.model.pt'), 'tiny.model.pt', refKernels)).toThrow(/number of attention heads is not in the file/);
    const pt = loadModelFromBytes(read('tiny.model.pt'), 'tiny.model.pt', refKernels, { num_heads: 4 });
    expect(st.format).toBe('safetensors');
    expect(pt.format).toBe('pt');
    expect(pt.config).toEqual(st.config); // the .pt has no configuration: inferred from its shapes, defaults where open
    const shape = [2, 4, 8, 8];
    const x = makeRng(5).fillNormal(new Float32Array(2 * 4 * 8 * 8));
    const a = Float32Array.from(st.model.forward(x, shape, [3, 517], [1, 10]));
    const b = Float32Array.from(pt.model.forward(x, shape, [3, 517], [1, 10]));
    expect(b).toEqual(a);
  });

  it('bytes that are no model, or cut short, are an error naming the file', () => {
    const bad: [string, Uint8Array][] = [
      ['notes.safetensors', new TextEncoder().encode('just some text, not a model')],
      ['cut.safetensors', read('tiny.model.safetensors').subarray(0, 5000)],
      ['cut.pt', read('tiny.model.pt').subarray(0, 5000)],
    ];
    for (const [name, bytes] of bad) {
      let err: unknown;
      try {
        loadModelFromBytes(bytes, name, refKernels);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(DitMoeError);
      expect((err as Error).message, name).toContain(name);
    }
  });
});
