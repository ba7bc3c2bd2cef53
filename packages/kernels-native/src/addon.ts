import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The addon's functions (see native/addon.cc): all write into caller-owned outputs. */
export interface NativeAddon {
  /** Bytes from the start of `buffer`'s data to its first 64-byte boundary (0..63). */
  alignmentSkip(buffer: ArrayBuffer): number;
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    aOffsets: Float64Array,
    bOffsets: Float64Array,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    /** [N], added to every output row (the output starts as the bias rows; the product accumulates onto them). */
    bias?: Float32Array | null,
  ): void;
  /**
   * A linear's weight gradient dW = xᵀ·dy [in, out] (dyᵀ·x [out, in] when transposeWeight) and,
   * when db is given, the bias gradient db[out] = dy's column sums, taken while our own GEMM
   * packs dy (native/gemm.cc).
   */
  linearWeightGrad(
    x: Float32Array,
    dy: Float32Array,
    dW: Float32Array,
    db: Float32Array | null,
    rows: number,
    inF: number,
    outF: number,
    transposeWeight: boolean,
  ): void;
  /** matmul with operands rounded to bf16 and fp32 accumulation (native/bf16.cc); throws without AVX-512 BF16. */
  bf16Matmul: NativeAddon['matmul'];
  gelu(x: Float32Array, y: Float32Array, tanh: boolean): void;
  geluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array, tanh: boolean): void;
  layerNorm(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array | null,
    y: Float32Array,
    rows: number,
    C: number,
    eps: number,
  ): void;
  layerNormGrad(
    x: Float32Array,
    dy: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    rows: number,
    C: number,
    eps: number,
  ): void;
  rmsNorm(x: Float32Array, gamma: Float32Array, y: Float32Array, rows: number, C: number, eps: number): void;
  rmsNormGrad(
    x: Float32Array,
    dy: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    rows: number,
    C: number,
    eps: number,
  ): void;
  crossEntropy(logits: Float32Array, labels: Int32Array, N: number, V: number, ignoreIndex: number): number;
  crossEntropyGrad(
    logits: Float32Array,
    labels: Int32Array,
    dlogits: Float32Array,
    N: number,
    V: number,
    ignoreIndex: number,
    scale: number,
  ): void;
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    dims: Int32Array,
    scale: number,
    causal: boolean,
    mask: Float32Array | null,
    bias: Float32Array | null,
    /** Optional head layouts of q, k, v, out (offset, batch, head, row each); default contiguous [B, H, T, D]. */
    layouts?: Float64Array,
  ): void;
  attentionGrad(
    dy: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    dbias: Float32Array | null,
    dims: Int32Array,
    scale: number,
    causal: boolean,
    mask: Float32Array | null,
    bias: Float32Array | null,
    layouts?: Float64Array,
  ): void;
  adamw(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    p1: Float32Array,
    m1: Float32Array,
    v1: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;
  /** out[0] = Σx² (float64 accumulation), out[1] = Σ(x·0): 0, or NaN when any element is NaN or ±Inf. */
  sumSquares(x: Float32Array, out: Float32Array): void;
  gather(x: Float32Array, rows: number, indices: Int32Array, out: Float32Array, rowSize: number): number;
  segmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, numSegments: number, rowSize: number): void;
  stridedCopy(
    x: Float32Array,
    xOffset: number,
    xStrides: Float64Array,
    out: Float32Array,
    outOffset: number,
    outStrides: Float64Array,
    dims: Float64Array,
  ): void;
  reduceSum(x: Float32Array, outer: number, reduce: number, inner: number, out: Float32Array): void;
  /** op: 0 add, 1 sub, 2 mul; the shorter operand repeats along the longer one's leading dims. */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** op: 0 relu, 1 step (x > 0 ? 1 : alpha; NaN stays NaN). */
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  blasConfig(): string;
  /** The instruction set the large products' own GEMM runs on ("avx512f", "avx2"), or "" when they go to sgemm. */
  ownGemm(): string;
  /** What the running CPU has (cpuid at run time; kernels dispatch on these). */
  cpuFeatures(): CpuFeatures;
  /** Packs an int32 [N, K] weight of int8 values into 16-output panels (native/int8.cc); colsum[o] = Σ_k w[o, k]. */
  int8PackWeights(w: Int32Array, N: number, K: number, packed: Int8Array, colsum: Int32Array): void;
  /** TesseraInt8Linear on packed weights; path -1 auto, 0 scalar, 1 AVX2, 2 VNNI. Returns the path it ran. */
  int8Linear(
    x: Float32Array,
    rows: number,
    K: number,
    packed: Int8Array,
    colsum: Int32Array,
    N: number,
    scales: Float32Array,
    bias: Float32Array | null,
    out: Float32Array,
    path: number,
  ): number;
}

/** Instruction sets the native kernels can dispatch on, as detected on the running CPU. */
export interface CpuFeatures {
  avx2: boolean;
  fma: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  avx512vl: boolean;
  /** vpdpbusd (u8 × s8 → s32): int8 GEMM. */
  avx512vnni: boolean;
  /** vdpbf16ps (bf16 × bf16 → f32): bf16 GEMM. */
  avx512bf16: boolean;
  avxvnni: boolean;
  /** AMX tiles with tdpbf16ps, enabled by the OS for this process: the bf16 GEMM's fast path. */
  amxBf16: boolean;
}

export type AddonLoad = { addon: NativeAddon; error?: undefined } | { addon?: undefined; error: string };

/** Where the build step puts the addon, next to this bundle (dist/index.js -> dist/native/). */
const addonPath = fileURLToPath(new URL('./native/tessera_native.node', import.meta.url));
const buildErrorPath = fileURLToPath(new URL('./native/build-error.txt', import.meta.url));

/** Threads to use: TESSERA_NATIVE_THREADS, else every core Node reports. */
export function defaultThreadCount(): number {
  const env = Number(process.env.TESSERA_NATIVE_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

/**
 * Loads the addon once. Never throws: a missing or broken build becomes a one-line reason
 * naming what to install, which isAvailable() reports and "auto" prints when it falls back.
 */
export function loadAddon(): AddonLoad {
  if (!existsSync(addonPath)) {
    if (existsSync(buildErrorPath)) {
      const why = readFileSync(buildErrorPath, 'utf8').split('\n')[0]!.trim();
      return { error: `native addon not built: ${why.replace(/\.$/, '')}` };
    }
    return {
      error:
        'native addon not built: run `npm run build -w @tessera/kernels-native` (needs the Debian packages g++ and libopenblas-dev)',
    };
  }
  // OpenBLAS reads this when the addon loads it. Its idle workers otherwise spin with
  // sched_yield for ~2^28 cycles after every sgemm, competing with our own pool's threads for
  // the same cores during the non-matmul kernels (up to 18% of a step's samples on 2 cores);
  // 4 (the minimum) makes them sleep at once. Waking them costs microseconds per sgemm.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '4';
  try {
    const addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
    addon.setNumThreads(defaultThreadCount());
    return { addon };
  } catch (err) {
    const msg = String((err as Error).message).split('\n')[0]!;
    if (/libopenblas/.test(msg)) {
      return { error: `native addon does not load (${msg}): install the Debian package libopenblas0-pthread` };
    }
    return { error: `native addon does not load: ${msg} (rebuild: npm run build -w @tessera/kernels-native)` };
  }
}
