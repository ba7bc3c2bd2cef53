// tfjs kernels on the device. Each covers the common case and hands anything else (other
// dtypes, ranks over 6, non-contiguous reduction axes, unusual broadcasts) to the host
// fallback of the same name, so coverage never changes an answer.
import * as tfc from '@tessera/tensor-core/tfjs';
import { BINARY, backendOf, type CudaContext, EPILOGUE_DEFAULT, MAX_RANK, REDUCE, sizeOf, UNARY } from './context.js';
import {
  broadcastStrides,
  concatCopies,
  matmulLayout,
  padCopy,
  reducedShape,
  reduceLayout,
  type StridedCopy,
  sliceCopy,
  transposeCopy,
} from './layout.js';

type TensorInfo = tfc.TensorInfo;
type Args = Parameters<tfc.KernelFunc>[0];

const isF32 = (...ts: TensorInfo[]) => ts.every((t) => t.dtype === 'float32');

export function standardKernels(ctx: CudaContext): Record<string, tfc.KernelFunc> {
  const { addon } = ctx;
  const kernels: Record<string, tfc.KernelFunc> = {};
  const orFallback =
    (name: string, run: (args: Args) => TensorInfo | TensorInfo[] | null): tfc.KernelFunc =>
    (args) =>
      run(args) ?? ctx.fallback(name)(args);

  const copy = (x: TensorInfo, out: TensorInfo, c: StridedCopy, args: Args) => {
    const be = backendOf(args);
    addon.stridedCopy(be.ptr(x), c.inOffset, be.ptr(out), c.outOffset, c.dims, c.inStrides, c.outStrides);
  };

  for (const [name, op] of Object.entries(BINARY)) {
    kernels[name] = orFallback(name, (args) => {
      const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
      if (!isF32(a, b)) return null;
      const layout = broadcastStrides(a.shape, b.shape);
      if (!layout || layout.shape.length > MAX_RANK) return null;
      const be = backendOf(args);
      const out = be.alloc(layout.shape);
      const n = sizeOf(layout.shape);
      if (n > 0) addon.binary(op, be.ptr(a), be.ptr(b), be.ptr(out), n, layout.shape, layout.aStrides, layout.bStrides);
      return out;
    });
  }

  for (const [name, op] of Object.entries(UNARY)) {
    if (name === 'Scale') continue; // internal: no tfjs kernel of that name
    kernels[name] = orFallback(name, (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      if (!isF32(x)) return null;
      const be = backendOf(args);
      const out = be.alloc(x.shape);
      const alpha = name === 'Step' ? ((args.attrs as { alpha?: number }).alpha ?? 0) : 0;
      if (sizeOf(x.shape) > 0) addon.unary(op, be.ptr(x), be.ptr(out), sizeOf(x.shape), alpha);
      return out;
    });
  }

  const reduction = (name: string, op: number, axisAttr: 'axis' | 'reductionIndices') =>
    orFallback(name, (args) => {
      const { x } = args.inputs as { x: TensorInfo };
      const attrs = args.attrs as Record<string, unknown>;
      if (!isF32(x)) return null;
      const layout = reduceLayout(x.shape, attrs[axisAttr] as number | number[]);
      if (!layout) return null;
      const be = backendOf(args);
      const out = be.alloc(reducedShape(x.shape, layout.axes, Boolean(attrs.keepDims)));
      if (layout.outer * layout.inner > 0) {
        addon.reduce(op, be.ptr(x), be.ptr(out), layout.outer, layout.reduce, layout.inner);
      }
      return out;
    });
  kernels.Sum = reduction('Sum', REDUCE.Sum, 'axis');
  kernels.Mean = reduction('Mean', REDUCE.Mean, 'axis');
  kernels.Max = reduction('Max', REDUCE.Max, 'reductionIndices');
  kernels.Min = reduction('Min', REDUCE.Min, 'axis');

  kernels.Softmax = orFallback('Softmax', (args) => {
    const { logits } = args.inputs as { logits: TensorInfo };
    const dim = (args.attrs as { dim: number }).dim;
    const rank = logits.shape.length;
    if (!isF32(logits) || rank === 0 || (dim !== -1 && dim !== rank - 1)) return null;
    const be = backendOf(args);
    const out = be.alloc(logits.shape);
    const cols = logits.shape[rank - 1]!;
    const rows = cols ? sizeOf(logits.shape) / cols : 0;
    if (rows > 0) addon.softmax(be.ptr(logits), be.ptr(out), rows, cols);
    return out;
  });

  kernels.BatchMatMul = orFallback('BatchMatMul', (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    if (!isF32(a, b)) return null;
    const layout = matmulLayout(a.shape, b.shape, transposeA, transposeB);
    if (!layout) return null;
    const be = backendOf(args);
    if (layout.K === 0) return be.alloc(layout.out, 'float32', true);
    const out = be.alloc(layout.out);
    if (sizeOf(layout.out) === 0) return out;
    const l = layout;
    addon.gemm(
      be.ptr(a),
      be.ptr(b),
      be.ptr(out),
      l.M,
      l.N,
      l.K,
      transposeA,
      transposeB,
      l.batch,
      l.strideA,
      l.strideB,
      l.strideC,
      1,
      0,
      0,
      EPILOGUE_DEFAULT,
      ctx.tf32,
    );
    return out;
  });

  // Views: same data, new shape. No copy, one more reference (as tfjs-backend-cpu does).
  const view = (shapeOf: (x: TensorInfo, attrs: Record<string, unknown>) => number[]) => (args: Args) => {
    // ExpandDims names its input "input"; the others "x".
    const { x = args.inputs.input as TensorInfo } = args.inputs as { x?: TensorInfo };
    backendOf(args).incRef(x.dataId);
    return { dataId: x.dataId, shape: shapeOf(x, args.attrs as Record<string, unknown>), dtype: x.dtype };
  };
  kernels.Reshape = view((x, attrs) => tfc.util.inferFromImplicitShape(attrs.shape as number[], sizeOf(x.shape)));
  kernels.Identity = view((x) => x.shape);
  kernels.ExpandDims = view((x, attrs) => {
    const rank = x.shape.length;
    const dim = attrs.dim as number;
    // tfjs's convention: a negative dim counts from the end of the result (rank + 1 axes).
    const at = dim < 0 ? rank + 1 + dim : dim;
    return [...x.shape.slice(0, at), 1, ...x.shape.slice(at)];
  });
  kernels.Cast = orFallback('Cast', (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    return (args.attrs as { dtype: string }).dtype === x.dtype ? view((t) => t.shape)(args) : null;
  });

  kernels.Transpose = orFallback('Transpose', (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { perm } = args.attrs as { perm: number[] };
    if (!isF32(x) || x.shape.length > MAX_RANK) return null;
    const c = transposeCopy(x.shape, perm);
    const out = backendOf(args).alloc(c.dims);
    if (sizeOf(c.dims) > 0) copy(x, out, c, args);
    return out;
  });

  kernels.Slice = orFallback('Slice', (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    if (!isF32(x) || x.shape.length > MAX_RANK) return null;
    const [b, s] = tfc.slice_util.parseSliceParams(x, begin, size);
    const out = backendOf(args).alloc(s);
    if (sizeOf(s) > 0) copy(x, out, sliceCopy(x.shape, b, s), args);
    return out;
  });

  // split(x, [q, k, v]) of attention's fused projection: one strided copy per piece.
  kernels.SplitV = orFallback('SplitV', (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    if (!isF32(x) || x.shape.length > MAX_RANK) return null;
    const ax = tfc.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tfc.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const be = backendOf(args);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((size) => {
      const shape = [...x.shape];
      shape[ax] = size;
      const out = be.alloc(shape);
      if (sizeOf(shape) > 0) copy(x, out, sliceCopy(x.shape, begin, shape), args);
      begin[ax]! += size;
      return out;
    });
  });

  // The optimizer's finite probe sums one scalar per gradient: n - 1 device adds, no reads.
  kernels.AddN = orFallback('AddN', (args) => {
    const xs = args.inputs as unknown as TensorInfo[];
    if (!xs.length || !isF32(...xs) || xs.some((t) => !tfc.util.arraysEqual(t.shape, xs[0]!.shape))) return null;
    const be = backendOf(args);
    const shape = xs[0]!.shape;
    const n = sizeOf(shape);
    const out = be.alloc(shape, 'float32', xs.length === 1);
    if (n === 0) return out;
    const flat = [n];
    const unit = [1];
    if (xs.length === 1) addon.binary(BINARY.Add, be.ptr(xs[0]!), be.ptr(out), be.ptr(out), n, flat, unit, unit);
    for (let i = 1; i < xs.length; i++) {
      addon.binary(BINARY.Add, be.ptr(i === 1 ? xs[0]! : out), be.ptr(xs[i]!), be.ptr(out), n, flat, unit, unit);
    }
    return out;
  });

  kernels.Fill = orFallback('Fill', (args) => {
    const { shape, value, dtype } = args.attrs as { shape: number[]; value: number; dtype?: string };
    if ((dtype ?? 'float32') !== 'float32' || typeof value !== 'number') return null;
    const be = backendOf(args);
    const out = be.alloc(shape);
    if (sizeOf(shape) > 0) addon.fill(be.ptr(out), sizeOf(shape), value);
    return out;
  });

  kernels.Concat = orFallback('Concat', (args) => {
    const xs = args.inputs as unknown as TensorInfo[];
    const axisAttr = (args.attrs as { axis: number | number[] }).axis;
    if (!xs.length || !isF32(...xs) || xs[0]!.shape.length > MAX_RANK) return null;
    const rank = xs[0]!.shape.length;
    const axis = tfc.util.parseAxisParam(axisAttr, xs[0]!.shape)[0]!;
    if (xs.some((t) => t.shape.length !== rank)) return null;
    const { out, copies } = concatCopies(
      xs.map((t) => t.shape),
      axis,
    );
    const result = backendOf(args).alloc(out);
    for (const c of copies) copy(xs[c.input]!, result, c, args);
    return result;
  });

  kernels.PadV2 = orFallback('PadV2', (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { paddings, constantValue } = args.attrs as { paddings: [number, number][]; constantValue: number };
    if (!isF32(x) || x.shape.length > MAX_RANK) return null;
    const { out, copy: c } = padCopy(x.shape, paddings);
    const be = backendOf(args);
    const result = be.alloc(out);
    if (sizeOf(out) > 0) addon.fill(be.ptr(result), sizeOf(out), constantValue);
    if (sizeOf(x.shape) > 0) copy(x, result, c, args);
    return result;
  });

  kernels.GatherV2 = orFallback('GatherV2', (args) => {
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const ax = tfc.util.parseAxisParam(axis, x.shape)[0];
    if (!isF32(x) || indices.dtype !== 'int32' || ax !== 0 || (batchDims ?? 0) !== 0 || x.shape.length === 0)
      return null;
    const be = backendOf(args);
    const rowSize = sizeOf(x.shape.slice(1));
    const count = sizeOf(indices.shape);
    const out = be.alloc([...indices.shape, ...x.shape.slice(1)]);
    if (count * rowSize === 0) return out;
    const bad = addon.gather(be.ptr(x), x.shape[0]!, be.ptr(indices), count, be.ptr(out), rowSize);
    if (bad >= 0) {
      be.disposeData(out.dataId);
      const value = (be.readSync(indices.dataId) as Int32Array)[bad];
      throw new Error(`GatherV2: the index value ${value} is not in [0, ${x.shape[0]! - 1}]`);
    }
    return out;
  });

  kernels.UnsortedSegmentSum = orFallback('UnsortedSegmentSum', (args) => {
    const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const { numSegments } = args.attrs as { numSegments: number };
    if (!isF32(x) || segmentIds.dtype !== 'int32' || segmentIds.shape.length !== 1) return null;
    if (x.shape[0] !== segmentIds.shape[0]) return null;
    const be = backendOf(args);
    const rowSize = sizeOf(x.shape.slice(1));
    const out = be.alloc([numSegments, ...x.shape.slice(1)], 'float32', true);
    const count = segmentIds.shape[0]!;
    if (count * rowSize > 0) addon.scatterAdd(be.ptr(x), be.ptr(segmentIds), count, be.ptr(out), numSegments, rowSize);
    return out;
  });

  const filled = (value: (attrs: Record<string, unknown>) => number) => (args: Args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (!isF32(x)) return null;
    const be = backendOf(args);
    const out = be.alloc(x.shape);
    if (sizeOf(x.shape) > 0) addon.fill(be.ptr(out), sizeOf(x.shape), value(args.attrs as Record<string, unknown>));
    return out;
  };
  kernels.ZerosLike = orFallback(
    'ZerosLike',
    filled(() => 0),
  );
  kernels.OnesLike = orFallback(
    'OnesLike',
    filled(() => 1),
  );

  return kernels;
}
