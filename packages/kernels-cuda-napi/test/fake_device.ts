// A device in JS memory: what CudaBackend needs (DeviceMemory) plus the few kernels the
// tests route through (elementwise, copies, reductions, softmax, gemm), computed the simple
// way. It checks the host side: data-id lifecycle, which kernels run where, and the
// arguments the TS side computes for the device (strides, offsets, GEMM shapes).
import { erf } from '@tessera/kernels-cpu';
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
      const fns: ((v: number) => number)[] = [
        (v) => -v,
        Math.exp,
        Math.log,
        Math.sqrt,
        (v) => 1 / Math.sqrt(v),
        (v) => (Number.isNaN(v) ? v : Math.max(v, 0)),
        (v) => (Number.isNaN(v) ? v : v > 0 ? 1 : alpha),
        Math.tanh,
        (v) => 1 / (1 + Math.exp(-v)),
        Math.abs,
        (v) => v * v,
        (v) => 1 / v,
        (v) => v * alpha,
      ];
      const f = fns[op];
      if (!f) throw new Error(`fake device: unary op ${op} does not exist`);
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
    ...fusedFakes(dev),
  };
  return new Proxy(k as CudaKernels, {
    get: (target, name: string) => (target as Record<string, unknown>)[name] ?? unsupported(name),
  });
}

/** The fused-op kernels, as native/kernels/*.cu compute them (fp32 stats, same argument conventions). */
function fusedFakes(dev: FakeDevice): Partial<CudaKernels> {
  const f = (p: number) => dev.f32(p);
  const k0 = Math.sqrt(2 / Math.PI);
  const geluD = (v: number, tanh: boolean) => {
    if (tanh) {
      const t = Math.tanh(k0 * (v + 0.044715 * v ** 3));
      return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k0 * (1 + 3 * 0.044715 * v * v);
    }
    return 0.5 * (1 + erf(v / Math.SQRT2)) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI);
  };
  const rowStats = (x: Float32Array, r: number, C: number, eps: number, rms: boolean) => {
    let mean = 0;
    if (!rms) {
      for (let i = 0; i < C; i++) mean += x[r * C + i]!;
      mean /= C;
    }
    let sq = 0;
    for (let i = 0; i < C; i++) sq += (x[r * C + i]! - mean) ** 2;
    return { mean, rstd: 1 / Math.sqrt(sq / C + eps) };
  };
  const normGrad = (
    [x, dy, gamma, dx, dgamma, dbeta]: Float32Array[],
    rows: number,
    C: number,
    eps: number,
    rms: boolean,
  ) => {
    for (let r = 0; r < rows; r++) {
      const { mean, rstd } = rowStats(x!, r, C, eps, rms);
      let sg = 0;
      let sgx = 0;
      for (let i = 0; i < C; i++) {
        const xhat = (x![r * C + i]! - mean) * rstd;
        const g = dy![r * C + i]! * gamma![i]!;
        sg += g;
        sgx += g * xhat;
      }
      const meanG = rms ? 0 : sg / C;
      for (let i = 0; i < C; i++) {
        const xhat = (x![r * C + i]! - mean) * rstd;
        const g = dy![r * C + i]! * gamma![i]!;
        dx![r * C + i] = rstd * (g - meanG - (xhat * sgx) / C);
        dgamma![i]! += dy![r * C + i]! * xhat;
        if (dbeta) dbeta[i]! += dy![r * C + i]!;
      }
    }
  };
  return {
    gelu(x, y, n, tanh) {
      dev.calls.push('gelu');
      const [a, b] = [f(x), f(y)];
      for (let i = 0; i < n; i++) {
        const v = a[i]!;
        b[i] = tanh ? 0.5 * v * (1 + Math.tanh(k0 * (v + 0.044715 * v ** 3))) : 0.5 * v * (1 + erf(v / Math.SQRT2));
      }
    },
    geluGrad(x, dy, dx, n, tanh) {
      dev.calls.push('geluGrad');
      const [a, d, o] = [f(x), f(dy), f(dx)];
      for (let i = 0; i < n; i++) o[i] = d[i]! * geluD(a[i]!, tanh);
    },
    layerNorm(x, gamma, beta, y, rows, C, eps) {
      dev.calls.push('layerNorm');
      const [a, g, o] = [f(x), f(gamma), f(y)];
      const b = beta ? f(beta) : null;
      for (let r = 0; r < rows; r++) {
        const { mean, rstd } = rowStats(a, r, C, eps, false);
        for (let i = 0; i < C; i++) o[r * C + i] = (a[r * C + i]! - mean) * rstd * g[i]! + (b ? b[i]! : 0);
      }
    },
    layerNormGrad(x, dy, gamma, dx, dgamma, dbeta, rows, C, eps) {
      dev.calls.push('layerNormGrad');
      normGrad([f(x), f(dy), f(gamma), f(dx), f(dgamma), f(dbeta)], rows, C, eps, false);
    },
    rmsNorm(x, gamma, y, rows, C, eps) {
      dev.calls.push('rmsNorm');
      const [a, g, o] = [f(x), f(gamma), f(y)];
      for (let r = 0; r < rows; r++) {
        const { rstd } = rowStats(a, r, C, eps, true);
        for (let i = 0; i < C; i++) o[r * C + i] = a[r * C + i]! * rstd * g[i]!;
      }
    },
    rmsNormGrad(x, dy, gamma, dx, dgamma, rows, C, eps) {
      dev.calls.push('rmsNormGrad');
      normGrad([f(x), f(dy), f(gamma), f(dx), f(dgamma)], rows, C, eps, true);
    },
    crossEntropy(logits, labels, rowLoss, dlogits, N, V, ignoreIndex, scale, dyScale) {
      dev.calls.push('crossEntropy');
      const [x, y] = [f(logits), dev.i32(labels)];
      const s = scale * (dyScale ? f(dyScale)[0]! : 1);
      for (let r = 0; r < N; r++) {
        const label = y[r]!;
        if (label === ignoreIndex) {
          if (rowLoss) f(rowLoss)[r] = 0;
          if (dlogits) f(dlogits).fill(0, r * V, (r + 1) * V);
          continue;
        }
        let m = -Infinity;
        for (let i = 0; i < V; i++) m = Math.max(m, x[r * V + i]!);
        let sum = 0;
        for (let i = 0; i < V; i++) sum += Math.exp(x[r * V + i]! - m);
        if (rowLoss) f(rowLoss)[r] = Math.log(sum) + m - x[r * V + label]!;
        if (dlogits) {
          const d = f(dlogits);
          for (let i = 0; i < V; i++) d[r * V + i] = s * (Math.exp(x[r * V + i]! - m) / sum - (i === label ? 1 : 0));
        }
      }
    },
    adamw(ptrs, ns, lr, b1, b2, eps, wd, step) {
      dev.calls.push('adamw');
      const bc1 = 1 - b1 ** step;
      const sqrtBc2 = Math.sqrt(1 - b2 ** step);
      ns.forEach((n, t) => {
        const [p, g, m, v, p1, m1, v1] = ptrs.slice(7 * t, 7 * t + 7).map(f) as Float32Array[];
        for (let i = 0; i < n; i++) {
          const mi = b1 * m![i]! + (1 - b1) * g![i]!;
          const vi = b2 * v![i]! + (1 - b2) * g![i]! * g![i]!;
          m1![i] = mi;
          v1![i] = vi;
          p1![i] = p![i]! * (1 - lr * wd) - ((lr / bc1) * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
        }
      });
    },
    attentionSoftmax(scores, B, H, Tq, Tk, biasDims, scale, causal, mask, bias) {
      dev.calls.push('attentionSoftmax');
      const s = f(scores);
      const mk = mask ? f(mask) : null;
      const bi = bias ? f(bias) : null;
      const [bB, bH, bT, bK] = biasDims as [number, number, number, number];
      for (let row = 0; row < B * H * Tq; row++) {
        const i = row % Tq;
        const bh = Math.floor(row / Tq);
        const b = Math.floor(bh / H);
        const h = bh % H;
        const last = causal ? i + (Tk - Tq) : Tk - 1;
        const boff = (((bB === 1 ? 0 : b) * bH + (bH === 1 ? 0 : h)) * bT + (bT === 1 ? 0 : i)) * bK;
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          const ok = j <= last && (!mk || mk[b * Tk + j] !== 0);
          const v = ok ? s[row * Tk + j]! * scale + (bi ? bi[boff + (bK === 1 ? 0 : j)]! : 0) : -Infinity;
          s[row * Tk + j] = v;
          m = Math.max(m, v);
        }
        if (m === -Infinity) {
          s.fill(0, row * Tk, (row + 1) * Tk);
          continue;
        }
        let sum = 0;
        for (let j = 0; j < Tk; j++) {
          const e = Math.exp(s[row * Tk + j]! - m);
          s[row * Tk + j] = e;
          sum += e;
        }
        for (let j = 0; j < Tk; j++) s[row * Tk + j]! /= sum;
      }
    },
    softmaxBackward(probs, dprobs, rows, cols) {
      dev.calls.push('softmaxBackward');
      const [p, d] = [f(probs), f(dprobs)];
      for (let r = 0; r < rows; r++) {
        let dot = 0;
        for (let j = 0; j < cols; j++) dot += p[r * cols + j]! * d[r * cols + j]!;
        for (let j = 0; j < cols; j++) d[r * cols + j] = p[r * cols + j]! * (d[r * cols + j]! - dot);
      }
    },
    gather(x, rows, indices, count, out, rowSize) {
      dev.calls.push('gather');
      const [a, idx, o] = [f(x), dev.i32(indices), f(out)];
      let bad = -1;
      for (let r = 0; r < count; r++) {
        const src = idx[r]!;
        if (src < 0 || src >= rows) {
          if (bad < 0) bad = r;
          o.fill(0, r * rowSize, (r + 1) * rowSize);
        } else o.set(a.subarray(src * rowSize, (src + 1) * rowSize), r * rowSize);
      }
      return bad;
    },
    scatterAdd(x, ids, count, out, numSegments, rowSize) {
      dev.calls.push('scatterAdd');
      const [a, id, o] = [f(x), dev.i32(ids), f(out)];
      for (let r = 0; r < count; r++) {
        const dst = id[r]!;
        if (dst < 0 || dst >= numSegments) continue;
        for (let c = 0; c < rowSize; c++) o[dst * rowSize + c]! += a[r * rowSize + c]!;
      }
    },
  };
}
