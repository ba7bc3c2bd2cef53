// Shape arithmetic the device kernels take as arguments: pure functions, tested on any machine.
import { sizeOf, stridesOf } from './context.js';

/** Output shape and each operand's strides for numpy broadcasting (0 on broadcast axes), or null if incompatible. */
export function broadcastStrides(
  a: readonly number[],
  b: readonly number[],
): { shape: number[]; aStrides: number[]; bStrides: number[] } | null {
  const rank = Math.max(a.length, b.length);
  const pad = (s: readonly number[]) => [...new Array<number>(rank - s.length).fill(1), ...s];
  const pa = pad(a);
  const pb = pad(b);
  const shape: number[] = [];
  for (let k = 0; k < rank; k++) {
    if (pa[k] !== pb[k] && pa[k] !== 1 && pb[k] !== 1) return null;
    shape.push(pa[k] === 1 ? pb[k]! : pa[k]!);
  }
  const sa = stridesOf(pa);
  const sb = stridesOf(pb);
  return {
    shape,
    aStrides: sa.map((s, k) => (pa[k] === 1 && shape[k] !== 1 ? 0 : s)),
    bStrides: sb.map((s, k) => (pb[k] === 1 && shape[k] !== 1 ? 0 : s)),
  };
}

/** A reduction over `axes` as [outer, reduce, inner], or null when the axes are not one contiguous run. */
export function reduceLayout(
  shape: readonly number[],
  axes: number | number[] | null | undefined,
): { outer: number; reduce: number; inner: number; axes: number[] } | null {
  const rank = shape.length;
  let list =
    axes == null ? [...shape.keys()] : (Array.isArray(axes) ? axes : [axes]).map((a) => (a < 0 ? a + rank : a));
  list = [...new Set(list)].sort((x, y) => x - y);
  if (list.some((a) => a < 0 || a >= rank)) return null;
  if (list.length === 0) return { outer: sizeOf(shape), reduce: 1, inner: 1, axes: [] };
  for (let i = 1; i < list.length; i++) if (list[i] !== list[i - 1]! + 1) return null;
  const first = list[0]!;
  const last = list[list.length - 1]!;
  return {
    outer: sizeOf(shape.slice(0, first)),
    reduce: sizeOf(shape.slice(first, last + 1)),
    inner: sizeOf(shape.slice(last + 1)),
    axes: list,
  };
}

export function reducedShape(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, k) => (axes.includes(k) ? 1 : d)) : shape.filter((_, k) => !axes.includes(k));
}

/** A strided copy (see launchStridedCopy): which elements go where, in element units. */
export interface StridedCopy {
  dims: number[];
  inOffset: number;
  inStrides: number[];
  outOffset: number;
  outStrides: number[];
}

export function transposeCopy(shape: readonly number[], perm: readonly number[]): StridedCopy {
  const xs = stridesOf(shape);
  const dims = perm.map((p) => shape[p]!);
  return { dims, inOffset: 0, inStrides: perm.map((p) => xs[p]!), outOffset: 0, outStrides: stridesOf(dims) };
}

export function sliceCopy(shape: readonly number[], begin: readonly number[], size: readonly number[]): StridedCopy {
  const xs = stridesOf(shape);
  return {
    dims: [...size],
    inOffset: begin.reduce((acc, b, k) => acc + b * xs[k]!, 0),
    inStrides: xs,
    outOffset: 0,
    outStrides: stridesOf(size),
  };
}

/** One strided copy per non-empty input, each into its place along `axis` of the output. */
export function concatCopies(
  shapes: readonly (readonly number[])[],
  axis: number,
): { out: number[]; copies: (StridedCopy & { input: number })[] } {
  const out = [...shapes[0]!];
  out[axis] = shapes.reduce((acc, s) => acc + s[axis]!, 0);
  const os = stridesOf(out);
  const copies: (StridedCopy & { input: number })[] = [];
  let at = 0;
  shapes.forEach((s, input) => {
    if (sizeOf(s) > 0) {
      copies.push({
        input,
        dims: [...s],
        inOffset: 0,
        inStrides: stridesOf(s),
        outOffset: at * os[axis]!,
        outStrides: os,
      });
    }
    at += s[axis]!;
  });
  return { out, copies };
}

/** Where x goes inside the padded output (paddings [before, after] per axis). */
export function padCopy(
  shape: readonly number[],
  paddings: readonly (readonly [number, number])[],
): { out: number[]; copy: StridedCopy } {
  const out = shape.map((d, k) => d + paddings[k]![0] + paddings[k]![1]);
  const os = stridesOf(out);
  return {
    out,
    copy: {
      dims: [...shape],
      inOffset: 0,
      inStrides: stridesOf(shape),
      outOffset: paddings.reduce((acc, p, k) => acc + p[0] * os[k]!, 0),
      outStrides: os,
    },
  };
}

/**
 * A batched row-major matmul [...batch, M, K] x [...batch, K, N] as strided-batch GEMM
 * arguments, or null when its batch broadcasting is not one the strided form can express.
 * A shared right operand folds the batch into M (one big GEMM: the linear-layer case).
 */
export function matmulLayout(
  aShape: readonly number[],
  bShape: readonly number[],
  transA: boolean,
  transB: boolean,
): {
  out: number[];
  M: number;
  N: number;
  K: number;
  batch: number;
  strideA: number;
  strideB: number;
  strideC: number;
} | null {
  const ra = aShape.length;
  const rb = bShape.length;
  if (ra < 2 || rb < 2) return null;
  const M = transA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const K = transA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const Kb = transB ? bShape[rb - 1]! : bShape[rb - 2]!;
  const N = transB ? bShape[rb - 2]! : bShape[rb - 1]!;
  if (K !== Kb) return null;
  const batchA = aShape.slice(0, -2);
  const batchB = bShape.slice(0, -2);
  const bcast = broadcastStrides(batchA, batchB);
  if (!bcast) return null;
  const batch = sizeOf(bcast.shape);
  const na = sizeOf(batchA);
  const nb = sizeOf(batchB);
  const out = [...bcast.shape, M, N];
  if (nb === 1 && !transA) {
    // [batch*M, K] x [K, N]: the batch folds into M.
    return { out, M: M * batch, N, K, batch: 1, strideA: 0, strideB: 0, strideC: 0 };
  }
  if (na !== batch && na !== 1) return null;
  if (nb !== batch && nb !== 1) return null;
  return {
    out,
    M,
    N,
    K,
    batch,
    strideA: na === 1 ? 0 : M * K,
    strideB: nb === 1 ? 0 : K * N,
    strideC: M * N,
  };
}
