/** What the GEMM bench measures, and a peer library's product as the bench drives it (bench/gemm.bench.ts, bench/onnxPeer.ts). */

export interface Rate {
  /** GFLOP/s at the mean time per call */
  mean: number;
  /** GFLOP/s of the fastest sample (the machine is shared: the least disturbed one) */
  best: number;
}

/** A peer library's product for one shape. */
export interface PeerCall {
  /** One call: x in, out written (it is validated against ref before timing). */
  run(): Promise<void>;
  /** The call timed (the peer warms it up first): GFLOP/s for `flops` per call. */
  measure(flops: number, maxTime: number): Promise<Rate>;
  dispose(): Promise<void>;
}

export interface Peer {
  name: string;
  /** Prepares the call for one shape (the weight given once, as the peer likes it). */
  prepare(x: Float32Array, w: Float32Array, b: Float32Array, M: number, K: number, N: number, out: Float32Array): Promise<PeerCall>;
  dispose(): Promise<void>;
}
