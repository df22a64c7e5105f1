/**
 * The dtypes tensors are stored in (safetensors, PyTorch), a tensor with its stored dtype, and
 * the exact conversions between float32 and the 16-bit formats. Imports nothing of ours.
 */

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32';
export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array;

export interface StTensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

/** IEEE 754 binary16 bits → number (exact). */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 bits → number (exact): the upper half of a float32. */
export function bf16ToFloat(h: number): number {
  const u = new Uint32Array([h << 16]);
  return new Float32Array(u.buffer)[0];
}

/** float32 bits → binary16 bits, round to nearest even (as torch's .half()). */
export function halfBits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** float32 bits → bfloat16 bits, round to nearest even; NaN stays NaN. */
export function bf16Bits(u: number): number {
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

const bitsView = new Uint32Array(1);
const floatView = new Float32Array(bitsView.buffer);
function float32Bits(x: number): number {
  floatView[0] = x;
  return bitsView[0];
}

/** number → binary16 bits, round to nearest even (as torch's .half()). */
export function floatToHalf(x: number): number {
  return halfBits(float32Bits(x));
}

/** number → bfloat16 bits, round to nearest even. */
export function floatToBf16(x: number): number {
  return bf16Bits(float32Bits(x));
}

/** Reads a tensor as float32 whatever its stored dtype (I64 labels and indices included). */
export function asFloat32(t: StTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]);
  return out;
}

/** Reads a tensor as plain numbers (float64), whatever its stored dtype. */
export function asNumbers(t: StTensor): Float64Array {
  if (t.data instanceof Float64Array) return t.data;
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]);
  return out;
}
