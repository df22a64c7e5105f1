/**
 * A one-layer ONNX model written by hand, for the onnxruntime-web peer of the GEMM bench:
 * onnxruntime has no single-op API, so the bench builds in memory a model whose graph is the
 * linear layer alone, y[M,N] = x[M,K]·wᵀ + b, with the weight and the bias as initializers
 * and x as the graph input.
 *
 * The protobuf wire format needs only two kinds of field here: varints (wire type 0) and
 * length-delimited bytes, strings and sub-messages (wire type 2). Field numbers, from
 * onnx/onnx.proto (proto2, package onnx):
 *
 *   ModelProto          ir_version 1 (int64), graph 7 (GraphProto), opset_import 8
 *   OperatorSetIdProto  domain 1 (string), version 2 (int64)
 *   GraphProto          node 1, name 2, initializer 5 (TensorProto), input 11, output 12
 *                       (ValueInfoProto)
 *   NodeProto           input 1, output 2 (repeated string), name 3, op_type 4,
 *                       attribute 5 (AttributeProto), domain 7
 *   AttributeProto      name 1 (string), i 3 (int64), type 20 (AttributeType: INT = 2)
 *   TensorProto         dims 1 (repeated int64, written unpacked: one field per dim, which
 *                       proto2 parsers accept), data_type 2 (FLOAT = 1), name 8,
 *                       raw_data 9 (bytes: fixed-width little-endian IEEE 754)
 *   ValueInfoProto      name 1, type 2 (TypeProto)
 *   TypeProto           tensor_type 1 (TypeProto.Tensor)
 *   TypeProto.Tensor    elem_type 1 (int32, FLOAT = 1), shape 2 (TensorShapeProto)
 *   TensorShapeProto    dim 1 (Dimension);  Dimension: dim_value 1 (int64)
 */

/** A protobuf message being written: a list of byte chunks (so large raw_data is not copied twice). */
class Pb {
  private chunks: Uint8Array[] = [];
  length = 0;

  private push(c: Uint8Array): void {
    this.chunks.push(c);
    this.length += c.length;
  }

  /** Unsigned varint (every value here is a non-negative integer below 2^53). */
  private varint(v: number): void {
    const out: number[] = [];
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wire: 0 | 2): void {
    this.varint(field * 8 + wire);
  }

  /** A varint field (int32, int64, enum) with a non-negative value. */
  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Pb): this {
    this.key(field, 2);
    this.varint(m.length);
    for (const c of m.chunks) this.push(c);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

const FLOAT = 1; // TensorProto.DataType
const ATTR_INT = 2; // AttributeProto.AttributeType

function tensor(name: string, dims: number[], data: Float32Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  t.int(2, FLOAT).string(8, name);
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return t.bytes(9, raw);
}

function valueInfo(name: string, dims: number[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.message(1, new Pb().int(1, d));
  const tensorType = new Pb().int(1, FLOAT).message(2, shape);
  return new Pb().string(1, name).message(2, new Pb().message(1, tensorType));
}

function node(op: string, inputs: string[], outputs: string[], ints: Record<string, number> = {}): Pb {
  const n = new Pb();
  for (const s of inputs) n.string(1, s);
  for (const s of outputs) n.string(2, s);
  n.string(3, op.toLowerCase()).string(4, op);
  for (const [name, v] of Object.entries(ints)) n.message(5, new Pb().string(1, name).int(20, ATTR_INT).int(3, v));
  return n;
}

/**
 * How the linear layer is expressed:
 *   'gemm-transB'  one Gemm node, transB = 1: B is the weight as stored, [N, K]; C the bias [N]
 *   'gemm'         one Gemm node on the weight transposed once to [K, N]; C the bias [N]
 *   'matmul-add'   MatMul on the weight [K, N], then Add of the bias [N] (two nodes)
 */
export type LinearForm = 'gemm-transB' | 'gemm' | 'matmul-add';

/**
 * The model bytes of y[M,N] = x[M,K]·wᵀ + b for w [N, K] row-major, b [N]: graph input "x"
 * [M, K], output "y" [M, N], ONNX IR version 8, default-domain opset 13.
 */
export function linearModel(w: Float32Array, b: Float32Array, M: number, K: number, N: number, form: LinearForm): Uint8Array {
  if (w.length !== N * K || b.length !== N) throw new Error('linearModel: w must be [N, K] and b [N]');
  const g = new Pb();
  let weight: Pb;
  if (form === 'gemm-transB') {
    g.message(1, node('Gemm', ['x', 'w', 'b'], ['y'], { transB: 1 }));
    weight = tensor('w', [N, K], w);
  } else {
    const wT = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wT[k * N + n] = w[n * K + k];
    weight = tensor('w', [K, N], wT);
    if (form === 'gemm') g.message(1, node('Gemm', ['x', 'w', 'b'], ['y']));
    else g.message(1, node('MatMul', ['x', 'w'], ['xw'])).message(1, node('Add', ['xw', 'b'], ['y']));
  }
  g.string(2, 'linear');
  g.message(5, weight).message(5, tensor('b', [N], b));
  g.message(11, valueInfo('x', [M, K])).message(12, valueInfo('y', [M, N]));
  return new Pb()
    .int(1, 8) // ir_version
    .message(8, new Pb().string(1, '').int(2, 13)) // opset_import: ai.onnx 13
    .message(7, g)
    .finish();
}
