import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A device pointer as the addon hands it out: a number (user addresses fit in 48 bits). */
export type DevicePtr = number;

export interface CudaProbe {
  /** CUDART_VERSION the addon was built against, e.g. 13000. */
  runtimeVersion: number;
  /** cudaDriverGetVersion: 0 when no driver (libcuda.so.1) could be loaded. */
  driverVersion: number;
  deviceCount: number;
  /** cudaGetDeviceCount's error name (cudaErrorNoDevice, cudaErrorInsufficientDriver, ...), or null. */
  error: string | null;
  errorString: string | null;
  devices: { name: string; major: number; minor: number; totalMemory: number; multiProcessors: number }[];
}

export interface LoadAttempt {
  /** The directory searched ("" for the dynamic loader's own path). */
  dir: string;
  file: string;
  /** Why it was not used; "" for the one that loaded. */
  error: string;
}

export interface CudaInit {
  cublasLoaded: boolean;
  cublasPath?: string;
  cublasVersion?: number;
  attempts: LoadAttempt[];
}

export interface AllocatorStats {
  allocatedBytes: number;
  requestedBytes: number;
  reservedBytes: number;
  peakAllocatedBytes: number;
  peakReservedBytes: number;
  deviceMallocs: number;
  deviceFrees: number;
  allocations: number;
  cacheHits: number;
  oomRetries: number;
  ooms: number;
  activeBlocks: number;
  cachedBlocks: number;
  segments: number;
  launches: number;
}

/**
 * Memory and transfer calls: what the backend's storage needs, and all a fake device (tests)
 * has to implement. Every call is enqueued on the addon's one compute stream.
 */
export interface DeviceMemory {
  malloc(bytes: number): DevicePtr;
  free(ptr: DevicePtr): void;
  upload(ptr: DevicePtr, values: Float32Array | Int32Array | Uint8Array): void;
  /** Waits for the stream; fills `out`. */
  download(ptr: DevicePtr, out: Float32Array | Int32Array | Uint8Array): void;
  /** Copies into pinned memory and resolves when the stream reaches the copy (no blocking wait). */
  downloadAsync(ptr: DevicePtr, bytes: number): Promise<ArrayBuffer>;
  memset(ptr: DevicePtr, bytes: number): void;
  copy(dst: DevicePtr, src: DevicePtr, bytes: number): void;
  synchronize(): void;
  stats(): AllocatorStats;
  emptyCache(): void;
}

/** The addon's kernels (native/addon.cc); pointers are device pointers, 0 for "none". */
export interface CudaKernels {
  gemm(
    a: DevicePtr,
    b: DevicePtr,
    c: DevicePtr,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    batch: number,
    strideA: number,
    strideB: number,
    strideC: number,
    alpha: number,
    beta: number,
    bias: DevicePtr,
    epilogue: number,
    tf32: boolean,
  ): void;
  binary(
    op: number,
    a: DevicePtr,
    b: DevicePtr,
    out: DevicePtr,
    n: number,
    shape: number[],
    aStrides: number[],
    bStrides: number[],
  ): void;
  unary(op: number, x: DevicePtr, out: DevicePtr, n: number, alpha: number): void;
  fill(out: DevicePtr, n: number, value: number): void;
  reduce(op: number, x: DevicePtr, out: DevicePtr, outer: number, reduce: number, inner: number): void;
  softmax(x: DevicePtr, out: DevicePtr, rows: number, cols: number): void;
  gelu(x: DevicePtr, y: DevicePtr, n: number, tanh: boolean): void;
  geluGrad(x: DevicePtr, dy: DevicePtr, dx: DevicePtr, n: number, tanh: boolean): void;
  layerNorm(x: DevicePtr, gamma: DevicePtr, beta: DevicePtr, y: DevicePtr, rows: number, C: number, eps: number): void;
  layerNormGrad(
    x: DevicePtr,
    dy: DevicePtr,
    gamma: DevicePtr,
    dx: DevicePtr,
    dgamma: DevicePtr,
    dbeta: DevicePtr,
    rows: number,
    C: number,
    eps: number,
  ): void;
  rmsNorm(x: DevicePtr, gamma: DevicePtr, y: DevicePtr, rows: number, C: number, eps: number): void;
  rmsNormGrad(
    x: DevicePtr,
    dy: DevicePtr,
    gamma: DevicePtr,
    dx: DevicePtr,
    dgamma: DevicePtr,
    rows: number,
    C: number,
    eps: number,
  ): void;
  crossEntropy(
    logits: DevicePtr,
    labels: DevicePtr,
    rowLoss: DevicePtr,
    dlogits: DevicePtr,
    N: number,
    V: number,
    ignoreIndex: number,
    scale: number,
    /** A device scalar that multiplies `scale` (the upstream gradient), or 0. */
    dyScale: DevicePtr,
  ): void;
  /** ptrs: 7 per tensor (p g m v p1 m1 v1); ns: elements per tensor. One launch for all. */
  adamw(
    ptrs: number[],
    ns: number[],
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;
  attentionSoftmax(
    scores: DevicePtr,
    B: number,
    H: number,
    Tq: number,
    Tk: number,
    biasDims: number[],
    scale: number,
    causal: boolean,
    mask: DevicePtr,
    bias: DevicePtr,
  ): void;
  softmaxBackward(probs: DevicePtr, dprobs: DevicePtr, rows: number, cols: number): void;
  /** Returns the first position whose index is out of range, or -1 (synchronises). */
  gather(x: DevicePtr, rows: number, indices: DevicePtr, count: number, out: DevicePtr, rowSize: number): number;
  scatterAdd(x: DevicePtr, ids: DevicePtr, count: number, out: DevicePtr, numSegments: number, rowSize: number): void;
  stridedCopy(
    x: DevicePtr,
    inOffset: number,
    out: DevicePtr,
    outOffset: number,
    dims: number[],
    inStrides: number[],
    outStrides: number[],
  ): void;
}

export interface CudaAddon extends DeviceMemory, CudaKernels {
  probe(): CudaProbe;
  /** Sets up device 0, the stream, the allocator, and cuBLASLt from the first of `dirs` that has it. */
  init(dirs: string[]): CudaInit;
}

export type AddonLoad = { addon: CudaAddon; error?: undefined } | { addon?: undefined; error: string };

const addonPath = fileURLToPath(new URL('./native/tessera_cuda.node', import.meta.url));
const buildErrorPath = fileURLToPath(new URL('./native/build-error.txt', import.meta.url));

/** The build's reason for not building, first line, without a trailing period. */
function buildError(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').split('\n')[0]!.trim().replace(/\.$/, '');
}

/**
 * Loads the addon once. Never throws: a build without nvcc, a missing build or one that does
 * not load becomes a one-line reason that isAvailable() reports.
 */
export function loadAddon(paths = { addon: addonPath, buildError: buildErrorPath }): AddonLoad {
  if (!existsSync(paths.addon)) {
    const why = buildError(paths.buildError);
    if (why?.startsWith('built without nvcc')) return { error: 'cuda unavailable: built without nvcc' };
    if (why) return { error: `cuda unavailable: the addon did not build (${why})` };
    return {
      error:
        'cuda unavailable: the addon is not built: run `npm run build -w @tessera/kernels-cuda-napi` (needs nvcc and g++)',
    };
  }
  try {
    return { addon: createRequire(import.meta.url)(paths.addon) as CudaAddon };
  } catch (err) {
    const msg = String((err as Error).message).split('\n')[0]!;
    return {
      error: `cuda unavailable: the addon does not load: ${msg} (rebuild: npm run build -w @tessera/kernels-cuda-napi)`,
    };
  }
}
