import { countLabels } from '@tessera/kernels-cpu';
import { TesseraError } from '@tessera/tensor-core';
import * as tfc from '@tessera/tensor-core/tfjs';
import type { NativeAddon } from './addon.js';
import { guardViews } from './backend.js';
import type { BufferPool } from './pool.js';

type KernelArgs = Parameters<tfc.KernelFunc>[0];
type TensorInfo = tfc.TensorInfo;

/** tfjs-backend-cpu's storage, which the native backend shares (see registerCpuDerivedBackend). */
interface CpuStorage {
  data: { get(dataId: object): { values: ArrayLike<number> | undefined } };
  makeTensorInfo(shape: number[], dtype: tfc.DataType, values: Float32Array | Int32Array): TensorInfo;
}

const storage = (args: KernelArgs) => args.backend as unknown as CpuStorage;
const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The tensor's own Float32Array (no copy), or null when it is not stored as one. */
function f32(args: KernelArgs, t: TensorInfo): Float32Array | null {
  const v = storage(args).data.get(t.dataId).values;
  return t.dtype === 'float32' && v instanceof Float32Array ? v : null;
}

/** Float32Array view of any numeric tensor (copies only when it is not float32: masks). */
function asF32(args: KernelArgs, t: TensorInfo): Float32Array {
  const v = storage(args).data.get(t.dataId).values!;
  return v instanceof Float32Array ? v : Float32Array.from(v);
}

function asI32(args: KernelArgs, t: TensorInfo): Int32Array {
  const v = storage(args).data.get(t.dataId).values!;
  return v instanceof Int32Array ? v : Int32Array.from(v);
}

const out = (args: KernelArgs, shape: number[], values: Float32Array) =>
  storage(args).makeTensorInfo(shape, 'float32', values);

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
 * The native kernels. Outputs come from `pool` (see pool.ts): `alloc` where the addon writes
 * every element, `zeros` where it may skip some (empty reductions, zero-sized attention).
 */
export function makeKernels(addon: NativeAddon, pool: BufferPool): Record<string, tfc.KernelFunc> {
  /**
   * Runs the cpu backend's kernel for the same name: the path for dtypes and layouts we do
   * not accelerate. Guarded like every inherited kernel, since it may return input views.
   */
  const cpu = (name: string, args: KernelArgs) => {
    const k = tfc.getKernel(name, 'cpu');
    if (!k) throw new TesseraError(`kernels-native: no cpu kernel "${name}" to fall back to.`);
    return guardViews(k.kernelFunc, pool)(args);
  };

  /** BatchMatMul (tf.matMul) through OpenBLAS sgemm, with transposes and full batch broadcasting. */
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
    if (batchB === 1 && !transposeA && batchA === sizeOf(outer)) {
      // [..., M, K] x [K, N]: one sgemm over all batch rows (a Linear layer) instead of many small ones.
      addon.matmul(av, bv, result, Float64Array.of(0), Float64Array.of(0), batchA * M, N, K, false, transposeB);
    } else {
      const aOff = batchOffsets(outer, a.shape, M * K)!;
      const bOff = batchOffsets(outer, b.shape, K * N)!;
      addon.matmul(av, bv, result, aOff, bOff, M, N, K, transposeA, transposeB);
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

  const gelu: tfc.KernelFunc = (args) => {
    const x = args.inputs.x!;
    const xv = asF32(args, x);
    const y = pool.alloc(xv.length);
    addon.gelu(xv, y, args.attrs!.approximate === 'tanh');
    return out(args, x.shape, y);
  };

  const geluGrad: tfc.KernelFunc = (args) => {
    const x = args.inputs.x!;
    const xv = asF32(args, x);
    const dx = pool.alloc(xv.length);
    addon.geluGrad(xv, asF32(args, args.inputs.dy!), dx, args.attrs!.approximate === 'tanh');
    return out(args, x.shape, dx);
  };

  const rowsOf = (x: TensorInfo) => {
    const C = x.shape[x.shape.length - 1]!;
    return { C, rows: C === 0 ? 0 : sizeOf(x.shape) / C };
  };

  const layerNorm: tfc.KernelFunc = (args) => {
    const { x, gamma, beta } = args.inputs as { x: TensorInfo; gamma: TensorInfo; beta?: TensorInfo };
    const { C, rows } = rowsOf(x);
    const y = pool.alloc(sizeOf(x.shape));
    if (rows > 0) {
      const b = beta ? asF32(args, beta) : null;
      addon.layerNorm(asF32(args, x), asF32(args, gamma), b, y, rows, C, args.attrs!.eps as number);
    }
    return out(args, x.shape, y);
  };

  const layerNormGrad: tfc.KernelFunc = (args) => {
    const { dy, x, gamma } = args.inputs as Record<string, TensorInfo>;
    const { C, rows } = rowsOf(x!);
    const dx = pool.alloc(sizeOf(x!.shape));
    const dgamma = pool.zeros(C);
    const dbeta = pool.zeros(C);
    if (rows > 0) {
      const eps = args.attrs!.eps as number;
      addon.layerNormGrad(asF32(args, x!), asF32(args, dy!), asF32(args, gamma!), dx, dgamma, dbeta, rows, C, eps);
    }
    return [out(args, x!.shape, dx), out(args, [C], dgamma), out(args, [C], dbeta)];
  };

  const rmsNorm: tfc.KernelFunc = (args) => {
    const { x, gamma } = args.inputs as Record<string, TensorInfo>;
    const { C, rows } = rowsOf(x!);
    const y = pool.alloc(sizeOf(x!.shape));
    if (rows > 0) addon.rmsNorm(asF32(args, x!), asF32(args, gamma!), y, rows, C, args.attrs!.eps as number);
    return out(args, x!.shape, y);
  };

  const rmsNormGrad: tfc.KernelFunc = (args) => {
    const { dy, x, gamma } = args.inputs as Record<string, TensorInfo>;
    const { C, rows } = rowsOf(x!);
    const dx = pool.alloc(sizeOf(x!.shape));
    const dgamma = pool.zeros(C);
    if (rows > 0) {
      const eps = args.attrs!.eps as number;
      addon.rmsNormGrad(asF32(args, x!), asF32(args, dy!), asF32(args, gamma!), dx, dgamma, rows, C, eps);
    }
    return [out(args, x!.shape, dx), out(args, [C], dgamma)];
  };

  /** Labels as int32, checked by the reference kernels' own check (same message). */
  const readLabels = (op: string, args: KernelArgs, logits: TensorInfo, labels: TensorInfo, ignoreIndex: number) => {
    const V = logits.shape[logits.shape.length - 1]!;
    const ys = asI32(args, labels);
    return { V, ys, counted: countLabels(op, ys, V, ignoreIndex) };
  };

  const crossEntropy: tfc.KernelFunc = (args) => {
    const { logits, labels } = args.inputs as Record<string, TensorInfo>;
    const ignoreIndex = args.attrs!.ignoreIndex as number;
    const { V, ys, counted } = readLabels('TesseraSoftmaxCrossEntropy', args, logits!, labels!, ignoreIndex);
    const total = ys.length ? addon.crossEntropy(asF32(args, logits!), ys, ys.length, V, ignoreIndex) : 0;
    const norm = args.attrs!.reduction === 'mean' ? Math.max(counted, 1) : 1;
    return out(args, [], Float32Array.of(total / norm));
  };

  const crossEntropyGrad: tfc.KernelFunc = (args) => {
    const { dy, logits, labels } = args.inputs as Record<string, TensorInfo>;
    const ignoreIndex = args.attrs!.ignoreIndex as number;
    const { V, ys, counted } = readLabels('TesseraSoftmaxCrossEntropyGrad', args, logits!, labels!, ignoreIndex);
    const norm = args.attrs!.reduction === 'mean' ? Math.max(counted, 1) : 1;
    const scale = asF32(args, dy!)[0]! / norm;
    const d = pool.alloc(sizeOf(logits!.shape));
    if (ys.length) addon.crossEntropyGrad(asF32(args, logits!), ys, d, ys.length, V, ignoreIndex, scale);
    return out(args, logits!.shape, d);
  };

  /** Shapes and optional inputs of an attention call, as the addon takes them. */
  const attentionSetup = (args: KernelArgs) => {
    const { q, k, v, mask, bias } = args.inputs as Record<string, TensorInfo | undefined>;
    const [B, H, Tq, D] = q!.shape as [number, number, number, number];
    const Tk = k!.shape[2]!;
    const Dv = v!.shape[3]!;
    const biasShape = bias ? bias.shape : [1, 1, 1, 1];
    const dims = Int32Array.from([B, H, Tq, Tk, D, Dv, ...biasShape]);
    const scale = (args.attrs!.scale as number | null) ?? 1 / Math.sqrt(D);
    return {
      q: q!,
      k: k!,
      v: v!,
      bias,
      dims,
      scale,
      causal: Boolean(args.attrs!.causal),
      maskValues: mask ? asF32(args, mask) : null,
      biasValues: bias ? asF32(args, bias) : null,
      B,
      H,
      Tq,
      Tk,
      Dv,
    };
  };

  const attention: tfc.KernelFunc = (args) => {
    const s = attentionSetup(args);
    const y = pool.alloc(s.B * s.H * s.Tq * s.Dv);
    if (y.length) {
      addon.attention(
        asF32(args, s.q),
        asF32(args, s.k),
        asF32(args, s.v),
        y,
        s.dims,
        s.scale,
        s.causal,
        s.maskValues,
        s.biasValues,
      );
    }
    return out(args, [s.B, s.H, s.Tq, s.Dv], y);
  };

  const attentionGrad: tfc.KernelFunc = (args) => {
    const s = attentionSetup(args);
    // With no query or no key the addon does not run, and every gradient is zero.
    const runs = s.B * s.H * s.Tq * s.Tk > 0;
    const grad = (n: number) => (runs ? pool.alloc(n) : pool.zeros(n));
    const dq = grad(sizeOf(s.q.shape));
    const dk = grad(sizeOf(s.k.shape));
    const dv = grad(sizeOf(s.v.shape));
    const dbiasShape = s.bias ? s.bias.shape : [s.B, s.H, s.Tq, s.Tk];
    const dbias = grad(sizeOf(dbiasShape));
    if (runs) {
      addon.attentionGrad(
        asF32(args, args.inputs.dy!),
        asF32(args, s.q),
        asF32(args, s.k),
        asF32(args, s.v),
        dq,
        dk,
        dv,
        dbias,
        s.dims,
        s.scale,
        s.causal,
        s.maskValues,
        s.biasValues,
      );
    }
    return [out(args, s.q.shape, dq), out(args, s.k.shape, dk), out(args, s.v.shape, dv), out(args, dbiasShape, dbias)];
  };

  const adamw: tfc.KernelFunc = (args) => {
    const a = args.attrs as unknown as Record<'lr' | 'beta1' | 'beta2' | 'eps' | 'weightDecay' | 'step', number>;
    const { param, grad, m, v } = args.inputs as Record<string, TensorInfo>;
    const n = sizeOf(param!.shape);
    const p1 = pool.alloc(n);
    const m1 = pool.alloc(n);
    const v1 = pool.alloc(n);
    addon.adamw(
      asF32(args, param!),
      asF32(args, grad!),
      asF32(args, m!),
      asF32(args, v!),
      p1,
      m1,
      v1,
      a.lr,
      a.beta1,
      a.beta2,
      a.eps,
      a.weightDecay,
      a.step,
    );
    const shape = param!.shape;
    return [out(args, shape, p1), out(args, shape, m1), out(args, shape, v1)];
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
    TesseraGelu: gelu,
    TesseraGeluGrad: geluGrad,
    TesseraLayerNorm: layerNorm,
    TesseraLayerNormGrad: layerNormGrad,
    TesseraRmsNorm: rmsNorm,
    TesseraRmsNormGrad: rmsNormGrad,
    TesseraSoftmaxCrossEntropy: crossEntropy,
    TesseraSoftmaxCrossEntropyGrad: crossEntropyGrad,
    TesseraAttention: attention,
    TesseraAttentionGrad: attentionGrad,
    TesseraAdamW: adamw,
  };
}
