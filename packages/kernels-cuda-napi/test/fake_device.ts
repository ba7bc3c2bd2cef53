// A device in JS memory: what CudaBackend needs (DeviceMemory) plus the few kernels the
// tests route through (elementwise, copies, reductions, softmax, gemm), computed the simple
// way. It checks the host side: data-id lifecycle, which kernels run where, and the
// arguments the TS side computes for the device (strides, offsets, GEMM shapes).
import type { AllocatorStats, CudaKernels, DeviceMemory } from '../src/addon.js';

export class FakeDevice implements DeviceMemory {
  private next = 4096;
  readonly buffers = new Map<number, Float32Array>();
  calls: string[] = [];
  mallocs = 0;
  frees = 0;
  uploads = 0;
  downloads = 0;

  /** The memory behind a pointer, as float32 (int32 data is kept bit-for-bit). */
  f32(ptr: number): Float32Array {
    const b = this.buffers.get(ptr);
    if (!b) throw new Error(`fake device: no buffer at ${ptr} (freed or never allocated)`);
    return b;
  }
  i32(ptr: number): Int32Array {
    const b = this.f32(ptr);
    return new Int32Array(b.buffer, b.byteOffset, b.length);
  }

  malloc(bytes: number): number {
    const p = this.next;
    this.next += Math.ceil(bytes / 512) * 512 + 512;
    this.buffers.set(p, new Float32Array(Math.ceil(bytes / 4)));
    this.mallocs++;
    return p;
  }
  free(ptr: number): void {
    if (!this.buffers.delete(ptr)) throw new Error(`fake device: double free of ${ptr}`);
    this.frees++;
  }
  upload(ptr: number, values: Float32Array | Int32Array | Uint8Array): void {
    this.uploads++;
    new Uint8Array(this.f32(ptr).buffer).set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  download(ptr: number, out: Float32Array | Int32Array | Uint8Array): void {
    this.downloads++;
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(
      new Uint8Array(this.f32(ptr).buffer, 0, out.byteLength),
    );
  }
  async downloadAsync(ptr: number, bytes: number): Promise<ArrayBuffer> {
    this.downloads++;
    await new Promise((r) => setTimeout(r, 1));
    return this.f32(ptr).buffer.slice(0, bytes) as ArrayBuffer;
  }
  memset(ptr: number, bytes: number): void {
    new Uint8Array(this.f32(ptr).buffer, 0, bytes).fill(0);
  }
  copy(dst: number, src: number, bytes: number): void {
    new Uint8Array(this.f32(dst).buffer).set(new Uint8Array(this.f32(src).buffer, 0, bytes));
  }
  synchronize(): void {}
  stats(): AllocatorStats {
    let bytes = 0;
    for (const b of this.buffers.values()) bytes += b.byteLength;
    return {
      allocatedBytes: bytes,
      requestedBytes: bytes,
      reservedBytes: bytes,
      peakAllocatedBytes: bytes,
      peakReservedBytes: bytes,
      deviceMallocs: this.mallocs,
      deviceFrees: this.frees,
      allocations: this.mallocs,
      cacheHits: 0,
      oomRetries: 0,
      ooms: 0,
      activeBlocks: this.buffers.size,
      cachedBlocks: 0,
      segments: this.buffers.size,
      launches: this.calls.length,
    };
  }
  emptyCache(): void {}
}

const BIN = [
  (a: number, b: number) => a + b,
  (a: number, b: number) => a - b,
  (a: number, b: number) => a * b,
  (a: number, b: number) => a / b,
  Math.max,
  Math.min,
  Math.pow,
  (a: number, b: number) => (a - b) ** 2,
];

function unravel(i: number, dims: readonly number[], strides: readonly number[]): number {
  let off = 0;
  for (let k = dims.length - 1; k >= 0; k--) {
    off += (i % dims[k]!) * strides[k]!;
    i = Math.floor(i / dims[k]!);
  }
  return off;
}

/** The kernels the tests exercise; any other call throws, so a test notices an unexpected device path. */
export function fakeKernels(dev: FakeDevice): CudaKernels {
  const unsupported = (name: string) => () => {
    throw new Error(`fake device: kernel ${name} is not simulated`);
  };
  const k: Partial<CudaKernels> = {
    binary(op, a, b, out, n, shape, as, bs) {
      dev.calls.push('binary');
      const [x, y, o] = [dev.f32(a), dev.f32(b), dev.f32(out)];
      for (let i = 0; i < n; i++) o[i] = BIN[op]!(x[unravel(i, shape, as)]!, y[unravel(i, shape, bs)]!);
    },
    unary(op, x, out, n, alpha) {
      dev.calls.push('unary');
      const fns: Record<number, (v: number) => number> = { 0: (v) => -v, 1: Math.exp, 12: (v) => v * alpha };
      const f = fns[op];
      if (!f) throw new Error(`fake device: unary op ${op} is not simulated`);
      const [src, dst] = [dev.f32(x), dev.f32(out)];
      for (let i = 0; i < n; i++) dst[i] = f(src[i]!);
    },
    fill(out, n, value) {
      dev.calls.push('fill');
      dev.f32(out).fill(value, 0, n);
    },
    stridedCopy(x, inOffset, out, outOffset, dims, inStrides, outStrides) {
      dev.calls.push('stridedCopy');
      const [src, dst] = [dev.f32(x), dev.f32(out)];
      const n = dims.reduce((p, d) => p * d, 1);
      for (let i = 0; i < n; i++)
        dst[outOffset + unravel(i, dims, outStrides)] = src[inOffset + unravel(i, dims, inStrides)]!;
    },
    reduce(op, x, out, outer, reduce, inner) {
      dev.calls.push('reduce');
      const [src, dst] = [dev.f32(x), dev.f32(out)];
      for (let o = 0; o < outer; o++) {
        for (let c = 0; c < inner; c++) {
          let acc = op === 2 ? -Infinity : op === 3 ? Infinity : 0;
          for (let r = 0; r < reduce; r++) {
            const v = src[(o * reduce + r) * inner + c]!;
            acc = op === 2 ? Math.max(acc, v) : op === 3 ? Math.min(acc, v) : acc + v;
          }
          dst[o * inner + c] = op === 1 ? acc / reduce : acc;
        }
      }
    },
    softmax(x, out, rows, cols) {
      dev.calls.push('softmax');
      const [src, dst] = [dev.f32(x), dev.f32(out)];
      for (let r = 0; r < rows; r++) {
        const row = src.subarray(r * cols, (r + 1) * cols);
        const m = Math.max(...row);
        let s = 0;
        for (let j = 0; j < cols; j++) s += Math.exp(row[j]! - m);
        for (let j = 0; j < cols; j++) dst[r * cols + j] = Math.exp(row[j]! - m) / s;
      }
    },
    gemm(a, b, c, M, N, K, tA, tB, batch, sA, sB, sC, alpha, beta) {
      dev.calls.push('gemm');
      const [A, B, C] = [dev.f32(a), dev.f32(b), dev.f32(c)];
      for (let p = 0; p < batch; p++) {
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let acc = 0;
            for (let q = 0; q < K; q++) {
              const av = A[p * sA + (tA ? q * M + i : i * K + q)]!;
              const bv = B[p * sB + (tB ? j * K + q : q * N + j)]!;
              acc += av * bv;
            }
            const at = p * sC + i * N + j;
            C[at] = alpha * acc + (beta ? beta * C[at]! : 0);
          }
        }
      }
    },
  };
  return new Proxy(k as CudaKernels, {
    get: (target, name: string) => (target as Record<string, unknown>)[name] ?? unsupported(name),
  });
}
