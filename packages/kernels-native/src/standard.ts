import { TesseraError } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import { guardViews } from './backend.js';
import { matmulFor } from './bf16.js';
import { asI32, f32, type NativeContext, out, sizeOf } from './storage.js';

type KernelArgs = Parameters<tfc.KernelFunc>[0];
type TensorInfo = tfc.TensorInfo;

/**
 * For each output batch entry (row-major over the broadcast outer dims), the element offset
 * of its matrix in `shape`'s storage. Returns null when the outer dims do not broadcast.
 */
function batchOffsets(outer: number[], shape: number[], matrixSize: number): Float64Array | null {
  const own = shape.slice(0, -2);
  const rank = outer.length;
  const padded = [...new Array(rank - own.length).fill(1), ...own];
  const strides = new Array<number>(rank).fill(0);
  let s = matrixSize;
  for (let d = rank - 1; d >= 0; d--) {
    if (padded[d] !== 1 && padded[d] !== outer[d]) return null;
    strides[d] = padded[d] === 1 ? 0 : s;
    s *= padded[d]!;
  }
  const n = sizeOf(outer);
  const offsets = new Float64Array(n);
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < rank; d++) off += idx[d]! * strides[d]!;
    offsets[i] = off;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < outer[d]!) break;
      idx[d] = 0;
    }
  }
  return offsets;
}

function broadcastOuter(a: number[], b: number[]): number[] | null {
  const rank = Math.max(a.length, b.length);
  const outer: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    outer.push(da === 1 ? db : da);
  }
  return outer;
}

/** Row-major strides of a contiguous tensor of `shape`. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

/** True when `small` (leading 1s dropped) equals the trailing dims of `full`: it repeats along the rest. */
function isTrailingBroadcast(small: readonly number[], full: readonly number[]): boolean {
  let start = 0;
  while (start < small.length && small[start] === 1) start++;
  const core = small.slice(start);
  if (core.length > full.length) return false;
  const tail = full.slice(full.length - core.length);
  return core.every((d, i) => d === tail[i]);
}

/**
 * The tfjs kernels a training step is made of, by tfjs kernel name: matmul, embedding gather
 * and scatter-add, data movement, sums and elementwise arithmetic.
 */
export function standardKernels({ addon, pool }: NativeContext): Record<string, tfc.KernelFunc> {
  /**
   * Runs the cpu backend's kernel for the same name: the path for dtypes and layouts we do
   * not accelerate. Guarded like every inherited kernel, since it may return input views.
   */
  const cpu = (name: string, args: KernelArgs) => {
    const k = tfc.getKernel(name, 'cpu');
    if (!k) throw new TesseraError(`kernels-native: no cpu kernel "${name}" to fall back to.`);
    return guardViews(k.kernelFunc, pool)(args);
  };

  /** BatchMatMul (tf.matMul) through OpenBLAS sgemm (or bf16, see bf16.ts), with transposes and full batch broadcasting. */
  const batchMatMul: tfc.KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const av = f32(args, a);
    const bv = f32(args, b);
    if (!av || !bv || a.shape.length < 2 || b.shape.length < 2) return cpu('BatchMatMul', args);
    const ar = a.shape.length;
    const br = b.shape.length;
    const M = transposeA ? a.shape[ar - 1]! : a.shape[ar - 2]!;
    const K = transposeA ? a.shape[ar - 2]! : a.shape[ar - 1]!;
    const Kb = transposeB ? b.shape[br - 1]! : b.shape[br - 2]!;
    const N = transposeB ? b.shape[br - 2]! : b.shape[br - 1]!;
    const outer = broadcastOuter(a.shape.slice(0, -2), b.shape.slice(0, -2));
    // Mismatches go to the cpu kernel, which throws tfjs's own error message.
    if (K !== Kb || !outer) return cpu('BatchMatMul', args);
    const outShape = [...outer, M, N];
    const result = pool.alloc(sizeOf(outShape));
    if (result.length === 0) return out(args, outShape, result);
    const batchA = sizeOf(a.shape.slice(0, -2));
    const batchB = sizeOf(b.shape.slice(0, -2));
    const matmul = matmulFor(addon, 'native');
    if (batchB === 1 && !transposeA && batchA === sizeOf(outer)) {
      // [..., M, K] x [K, N]: one sgemm over all batch rows (a Linear layer) instead of many small ones.
      matmul(av, bv, result, Float64Array.of(0), Float64Array.of(0), batchA * M, N, K, false, transposeB);
    } else {
      const aOff = batchOffsets(outer, a.shape, M * K)!;
      const bOff = batchOffsets(outer, b.shape, K * N)!;
      matmul(av, bv, result, aOff, bOff, M, N, K, transposeA, transposeB);
    }
    return out(args, outShape, result);
  };

  /** Embedding lookup: tf.gather(table, ids) on axis 0. */
  const gatherV2: tfc.KernelFunc = (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims?: number };
    const xv = f32(args, x);
    const parsedAxis = axis < 0 ? axis + x.shape.length : axis;
    if (!xv || indices.dtype !== 'int32' || parsedAxis !== 0 || (batchDims ?? 0) !== 0 || x.shape[0] === 0) {
      return cpu('GatherV2', args);
    }
    const ids = asI32(args, indices);
    const rows = x.shape[0]!;
    const rowSize = xv.length / rows;
    const outShape = [...indices.shape, ...x.shape.slice(1)];
    const result = pool.alloc(sizeOf(outShape));
    const bad = addon.gather(xv, rows, ids, result, rowSize);
    if (bad >= 0) throw new Error(`GatherV2: the index value ${ids[bad]} is not in [0, ${rows - 1}]`);
    return out(args, outShape, result);
  };

  /** Scatter-add: the gradient of gather (embedding backward). */
  const unsortedSegmentSum: tfc.KernelFunc = (args) => {
    const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const { numSegments } = args.attrs as { numSegments: number };
    const xv = f32(args, x);
    const idRank = segmentIds.shape.length;
    const leading = x.shape.slice(0, idRank);
    if (!xv || segmentIds.dtype !== 'int32' || leading.join(',') !== segmentIds.shape.join(',')) {
      return cpu('UnsortedSegmentSum', args);
    }
    const ids = asI32(args, segmentIds);
    const rowShape = x.shape.slice(idRank);
    const rowSize = sizeOf(rowShape);
    const result = pool.zeros(numSegments * rowSize);
    if (ids.length > 0 && rowSize > 0) addon.segmentSum(xv, ids, result, numSegments, rowSize);
    return out(args, [numSegments, ...rowShape], result);
  };

  /** Copies `dims` of x (at offset, with strides) into a new contiguous tensor. */
  const copyView = (
    xv: Float32Array,
    offset: number,
    xStrides: number[],
    dims: number[],
    into?: { out: Float32Array; offset: number; strides: number[] },
  ) => {
    const target = into ?? { out: pool.alloc(sizeOf(dims)), offset: 0, strides: stridesOf(dims) };
    if (sizeOf(dims) > 0) {
      addon.stridedCopy(
        xv,
        offset,
        Float64Array.from(xStrides),
        target.out,
        target.offset,
        Float64Array.from(target.strides),
        Float64Array.from(dims),
      );
    }
    return target.out;
  };

  const transpose: tfc.KernelFunc = (args) => {
    const x = args.inputs.x!;
    const perm = args.attrs!.perm as number[];
    const xv = f32(args, x);
    if (!xv || x.shape.length > 8) return cpu('Transpose', args);
    const xs = stridesOf(x.shape);
    const dims = perm.map((p) => x.shape[p]!);
    return out(
      args,
      dims,
      copyView(
        xv,
        0,
        perm.map((p) => xs[p]!),
        dims,
      ),
    );
  };

  const slice: tfc.KernelFunc = (args) => {
    const x = args.inputs.x!;
    const xv = f32(args, x);
    if (!xv || x.shape.length > 8) return cpu('Slice', args);
    const [begin, size] = tfc.slice_util.parseSliceParams(
      x,
      args.attrs!.begin as number[],
      args.attrs!.size as number[],
    );
    tfc.slice_util.assertParamsValid(x, begin!, size!);
    const xs = stridesOf(x.shape);
    const offset = begin!.reduce((acc, b, d) => acc + b * xs[d]!, 0);
    return out(args, size!, copyView(xv, offset, xs, size!));
  };

  const splitV: tfc.KernelFunc = (args) => {
    const x = args.inputs.x!;
    const xv = f32(args, x);
    if (!xv || x.shape.length > 8) return cpu('SplitV', args);
    const axis = tfc.util.parseAxisParam(args.attrs!.axis as number, x.shape)[0]!;
    const sizes = tfc.backend_util.prepareSplitSize(x as tfc.Tensor, args.attrs!.numOrSizeSplits as number[], axis);
    const xs = stridesOf(x.shape);
    let at = 0;
    return sizes.map((s) => {
      const dims = [...x.shape];
      dims[axis] = s;
      const piece = copyView(xv, at * xs[axis]!, xs, dims);
      at += s;
      return out(args, dims, piece);
    });
  };

  const concat: tfc.KernelFunc = (args) => {
    const inputs = args.inputs as unknown as TensorInfo[];
    const values = inputs.map((t) => f32(args, t));
    if (!inputs.length || values.some((v) => !v) || inputs[0]!.shape.length > 8) return cpu('Concat', args);
    const axis = tfc.util.parseAxisParam(args.attrs!.axis as number, inputs[0]!.shape)[0]!;
    // As the cpu kernel: mismatched ranks or non-axis dims throw tfjs's message (copying
    // them into an output sized from the first input would write past its end).
    tfc.backend_util.assertParamsConsistent(
      inputs.map((t) => t.shape),
      axis,
    );
    const outShape = tfc.backend_util.computeOutShape(
      inputs.map((t) => t.shape),
      axis,
    );
    const result = pool.alloc(sizeOf(outShape));
    const os = stridesOf(outShape);
    let at = 0;
    inputs.forEach((t, i) => {
      copyView(values[i]!, 0, stridesOf(t.shape), t.shape, { out: result, offset: at * os[axis]!, strides: os });
      at += t.shape[axis]!;
    });
    return out(args, outShape, result);
  };

  /** Sum over a contiguous run of axes (bias gradients, means); other axis sets go to cpu. */
  const sum: tfc.KernelFunc = (args) => {
    const x = args.inputs.x!;
    const xv = f32(args, x);
    if (!xv) return cpu('Sum', args);
    const axes = tfc.util.parseAxisParam(args.attrs!.axis as number | number[], x.shape).sort((p, q) => p - q);
    if (axes.some((a, i) => a !== axes[0]! + i)) return cpu('Sum', args);
    const first = axes[0] ?? x.shape.length;
    const last = axes.length ? axes[axes.length - 1]! : x.shape.length - 1;
    const outer = sizeOf(x.shape.slice(0, first));
    const reduce = sizeOf(x.shape.slice(first, last + 1));
    const inner = sizeOf(x.shape.slice(last + 1));
    const outShape = args.attrs!.keepDims
      ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
      : x.shape.filter((_, i) => !axes.includes(i));
    const result = reduce > 0 ? pool.alloc(outer * inner) : pool.zeros(outer * inner);
    if (result.length && reduce > 0) addon.reduceSum(xv, outer, reduce, inner, result);
    return out(args, outShape, result);
  };

  /** Add/Sub/Mul for equal shapes and trailing broadcasts (bias adds); anything else goes to cpu. */
  const binary =
    (name: string, op: number): tfc.KernelFunc =>
    (args) => {
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      const av = f32(args, a);
      const bv = f32(args, b);
      if (!av || !bv) return cpu(name, args);
      const outShape = broadcastOuter(a.shape, b.shape);
      if (!outShape) return cpu(name, args);
      const n = sizeOf(outShape);
      const fits =
        (av.length === n && (bv.length === n || isTrailingBroadcast(b.shape, outShape))) ||
        (bv.length === n && isTrailingBroadcast(a.shape, outShape));
      if (!fits || (n > 0 && (av.length === 0 || bv.length === 0))) return cpu(name, args);
      const result = pool.alloc(n);
      addon.binary(op, av, bv, result);
      return out(args, outShape, result);
    };

  /** Relu and Step (relu's gradient is dy · step(x)) for float32; other dtypes go to cpu. */
  const unary =
    (name: string, op: number): tfc.KernelFunc =>
    (args) => {
      const x = args.inputs.x!;
      const xv = f32(args, x);
      if (!xv) return cpu(name, args);
      const result = pool.alloc(xv.length);
      addon.unary(op, xv, result, (args.attrs?.alpha as number | undefined) ?? 0);
      return out(args, x.shape, result);
    };

  /** Constant padding of a float32 tensor (the gradient of slice): fill, then copy x inside. */
  const padV2: tfc.KernelFunc = (args) => {
    const x = args.inputs.x!;
    const xv = f32(args, x);
    const { paddings, constantValue } = args.attrs as { paddings: [number, number][]; constantValue: number };
    if (!xv || x.shape.length > 8 || paddings.length !== x.shape.length) return cpu('PadV2', args);
    const outShape = x.shape.map((d, i) => paddings[i]![0] + d + paddings[i]![1]);
    const result = pool.alloc(sizeOf(outShape)).fill(constantValue);
    const os = stridesOf(outShape);
    const offset = paddings.reduce((acc, [before], d) => acc + before * os[d]!, 0);
    copyView(xv, 0, stridesOf(x.shape), x.shape, { out: result, offset, strides: os });
    return out(args, outShape, result);
  };

  return {
    Relu: unary('Relu', 0),
    Step: unary('Step', 1),
    PadV2: padV2,
    Transpose: transpose,
    Slice: slice,
    SplitV: splitV,
    Concat: concat,
    Sum: sum,
    Add: binary('Add', 0),
    Sub: binary('Sub', 1),
    Multiply: binary('Multiply', 2),
    BatchMatMul: batchMatMul,
    GatherV2: gatherV2,
    UnsortedSegmentSum: unsortedSegmentSum,
  };
}
