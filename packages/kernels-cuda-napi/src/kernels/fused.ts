// Tessera's fused ops on the device, forward and backward, as a typed FusedKernelTable.
import { countLabels } from '@tessera/kernels-cpu';
import {
  type AttentionAttrs,
  type FusedKernelTable,
  softmaxCrossEntropyGradOp,
  softmaxCrossEntropyOp,
} from '@tessera/tensor-core';
import type * as tfc from '@tessera/tensor-core/tfjs';
import type { CudaBackend } from '../backend.js';
import { backendOf, type CudaContext, EPILOGUE_DEFAULT, REDUCE, sizeOf, UNARY } from './context.js';

type TensorInfo = tfc.TensorInfo;

function rowsOf(x: TensorInfo) {
  const C = x.shape[x.shape.length - 1]!;
  return { C, rows: C === 0 ? 0 : sizeOf(x.shape) / C };
}

/** A float32 device copy of a mask that may be int32 or bool (made on the host; masks are small). */
function floatMask(be: CudaBackend, mask: TensorInfo | undefined): { ptr: number; temp?: TensorInfo } {
  if (!mask) return { ptr: 0 };
  if (mask.dtype === 'float32') return { ptr: be.ptr(mask) };
  const temp = be.makeTensorInfo(
    mask.shape,
    'float32',
    Float32Array.from(be.readSync(mask.dataId) as ArrayLike<number>),
  );
  return { ptr: be.ptr(temp), temp };
}

export function fusedKernels(ctx: CudaContext): FusedKernelTable {
  const { addon } = ctx;
  const gemm = (
    a: number,
    b: number,
    c: number,
    M: number,
    N: number,
    K: number,
    tA: boolean,
    tB: boolean,
    batch: number,
    sA: number,
    sB: number,
    sC: number,
    alpha = 1,
  ) => addon.gemm(a, b, c, M, N, K, tA, tB, batch, sA, sB, sC, alpha, 0, 0, EPILOGUE_DEFAULT, ctx.tf32);

  /** Scores -> probabilities [B*H, Tq, Tk] for q, k (batched GEMM, then the fused masked softmax). */
  const probabilities = (
    be: CudaBackend,
    inputs: { q: TensorInfo; k: TensorInfo; mask?: TensorInfo; bias?: TensorInfo },
    attrs: AttentionAttrs,
  ) => {
    const { q, k, mask, bias } = inputs;
    const [B, H, Tq, D] = q.shape as [number, number, number, number];
    const Tk = k.shape[2]!;
    const scale = attrs.scale ?? 1 / Math.sqrt(D);
    const probs = be.alloc([B, H, Tq, Tk], 'float32', D === 0);
    if (D > 0) gemm(be.ptr(q), be.ptr(k), be.ptr(probs), Tq, Tk, D, false, true, B * H, Tq * D, Tk * D, Tq * Tk);
    const m = floatMask(be, mask);
    const biasDims = bias ? [...bias.shape] : [1, 1, 1, 1];
    addon.attentionSoftmax(be.ptr(probs), B, H, Tq, Tk, biasDims, scale, attrs.causal, m.ptr, bias ? be.ptr(bias) : 0);
    if (m.temp) be.disposeIntermediateTensorInfo(m.temp);
    return { probs, B, H, Tq, Tk, D, scale };
  };

  /** Sums a [B, H, Tq, Tk] gradient down to the bias's broadcast shape, one axis at a time. */
  const sumToShape = (be: CudaBackend, full: TensorInfo, target: readonly number[]): TensorInfo => {
    let cur = full;
    for (let axis = 0; axis < 4; axis++) {
      if (target[axis] !== 1 || cur.shape[axis] === 1) continue;
      const shape = cur.shape.map((d, i) => (i === axis ? 1 : d));
      const next = be.alloc(shape);
      const outer = sizeOf(cur.shape.slice(0, axis));
      const inner = sizeOf(cur.shape.slice(axis + 1));
      addon.reduce(REDUCE.Sum, be.ptr(cur), be.ptr(next), outer, cur.shape[axis]!, inner);
      if (cur !== full) be.disposeIntermediateTensorInfo(cur);
      cur = next;
    }
    if (cur === full) return full;
    be.disposeIntermediateTensorInfo(full);
    return { ...cur, shape: [...target] };
  };

  /** Labels as int32 on the host, checked by the reference kernels' own check (same message). */
  const labelsOf = (be: CudaBackend, op: string, logits: TensorInfo, labels: TensorInfo, ignoreIndex: number) => {
    const V = logits.shape[logits.shape.length - 1]!;
    const host = be.readSync(labels.dataId) as ArrayLike<number>;
    const ys = host instanceof Int32Array ? host : Int32Array.from(host);
    const counted = countLabels(op, ys, V, ignoreIndex);
    // The kernel reads int32 labels on the device.
    const onDevice = labels.dtype === 'int32' ? labels : be.makeTensorInfo(labels.shape, 'int32', ys);
    return { V, N: ys.length, counted, labels: onDevice, temp: onDevice !== labels };
  };

  return {
    TesseraGelu: (args) => {
      const be = backendOf(args);
      const x = args.inputs.x;
      const y = be.alloc(x.shape);
      const n = sizeOf(x.shape);
      if (n) addon.gelu(be.ptr(x), be.ptr(y), n, args.attrs.approximate === 'tanh');
      return y;
    },

    TesseraGeluGrad: (args) => {
      const be = backendOf(args);
      const { x, dy } = args.inputs;
      const dx = be.alloc(x.shape);
      const n = sizeOf(x.shape);
      if (n) addon.geluGrad(be.ptr(x), be.ptr(dy), be.ptr(dx), n, args.attrs.approximate === 'tanh');
      return dx;
    },

    TesseraLayerNorm: (args) => {
      const be = backendOf(args);
      const { x, gamma, beta } = args.inputs;
      const { C, rows } = rowsOf(x);
      const y = be.alloc(x.shape);
      if (rows) addon.layerNorm(be.ptr(x), be.ptr(gamma), beta ? be.ptr(beta) : 0, be.ptr(y), rows, C, args.attrs.eps);
      return y;
    },

    TesseraLayerNormGrad: (args) => {
      const be = backendOf(args);
      const { dy, x, gamma } = args.inputs;
      const { C, rows } = rowsOf(x);
      const dx = be.alloc(x.shape);
      const dgamma = be.alloc([C], 'float32', true);
      const dbeta = be.alloc([C], 'float32', true);
      if (rows) {
        addon.layerNormGrad(
          be.ptr(x),
          be.ptr(dy),
          be.ptr(gamma),
          be.ptr(dx),
          be.ptr(dgamma),
          be.ptr(dbeta),
          rows,
          C,
          args.attrs.eps,
        );
      }
      return [dx, dgamma, dbeta];
    },

    TesseraRmsNorm: (args) => {
      const be = backendOf(args);
      const { x, gamma } = args.inputs;
      const { C, rows } = rowsOf(x);
      const y = be.alloc(x.shape);
      if (rows) addon.rmsNorm(be.ptr(x), be.ptr(gamma), be.ptr(y), rows, C, args.attrs.eps);
      return y;
    },

    TesseraRmsNormGrad: (args) => {
      const be = backendOf(args);
      const { dy, x, gamma } = args.inputs;
      const { C, rows } = rowsOf(x);
      const dx = be.alloc(x.shape);
      const dgamma = be.alloc([C], 'float32', true);
      if (rows)
        addon.rmsNormGrad(be.ptr(x), be.ptr(dy), be.ptr(gamma), be.ptr(dx), be.ptr(dgamma), rows, C, args.attrs.eps);
      return [dx, dgamma];
    },

    TesseraSoftmaxCrossEntropy: (args) => {
      const be = backendOf(args);
      const { logits, labels } = args.inputs;
      const { ignoreIndex } = args.attrs;
      const l = labelsOf(be, softmaxCrossEntropyOp.name, logits, labels, ignoreIndex);
      const norm = args.attrs.reduction === 'mean' ? Math.max(l.counted, 1) : 1;
      const out = be.alloc([], 'float32', true);
      if (l.N) {
        const rowLoss = be.alloc([l.N]);
        addon.crossEntropy(be.ptr(logits), be.ptr(l.labels), be.ptr(rowLoss), 0, l.N, l.V, ignoreIndex, 1, 0);
        addon.reduce(REDUCE.Sum, be.ptr(rowLoss), be.ptr(out), 1, l.N, 1);
        addon.unary(UNARY.Scale, be.ptr(out), be.ptr(out), 1, 1 / norm);
        be.disposeIntermediateTensorInfo(rowLoss);
      }
      if (l.temp) be.disposeIntermediateTensorInfo(l.labels);
      return out;
    },

    TesseraSoftmaxCrossEntropyGrad: (args) => {
      const be = backendOf(args);
      const { dy, logits, labels } = args.inputs;
      const { ignoreIndex } = args.attrs;
      const l = labelsOf(be, softmaxCrossEntropyGradOp.name, logits, labels, ignoreIndex);
      const norm = args.attrs.reduction === 'mean' ? Math.max(l.counted, 1) : 1;
      const d = be.alloc(logits.shape);
      // dy stays on the device: the kernel multiplies by it, so the step never waits here.
      if (l.N)
        addon.crossEntropy(be.ptr(logits), be.ptr(l.labels), 0, be.ptr(d), l.N, l.V, ignoreIndex, 1 / norm, be.ptr(dy));
      if (l.temp) be.disposeIntermediateTensorInfo(l.labels);
      return d;
    },

    TesseraAdamW: (args) => {
      const be = backendOf(args);
      const a = args.attrs;
      const { param, grad, m, v } = args.inputs;
      const n = sizeOf(param.shape);
      const outs = [be.alloc(param.shape), be.alloc(param.shape), be.alloc(param.shape)];
      if (n) {
        const ptrs = [param, grad, m, v, ...outs].map((t) => be.ptr(t));
        addon.adamw(ptrs, [n], a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.step);
      }
      return outs;
    },

    TesseraAttention: (args) => {
      const be = backendOf(args);
      const { v } = args.inputs;
      const p = probabilities(be, args.inputs, args.attrs);
      const Dv = v.shape[3]!;
      const y = be.alloc([p.B, p.H, p.Tq, Dv], 'float32', p.Tk === 0);
      if (p.Tk > 0 && Dv > 0) {
        gemm(
          be.ptr(p.probs),
          be.ptr(v),
          be.ptr(y),
          p.Tq,
          Dv,
          p.Tk,
          false,
          false,
          p.B * p.H,
          p.Tq * p.Tk,
          p.Tk * Dv,
          p.Tq * Dv,
        );
      }
      be.disposeIntermediateTensorInfo(p.probs);
      return y;
    },

    TesseraAttentionGrad: (args) => {
      const be = backendOf(args);
      const { dy, q, k, v, bias } = args.inputs;
      const p = probabilities(be, args.inputs, args.attrs);
      const { B, H, Tq, Tk, D, scale } = p;
      const Dv = v.shape[3]!;
      const BH = B * H;
      const dq = be.alloc(q.shape, 'float32', Tk === 0);
      const dk = be.alloc(k.shape, 'float32', Tq === 0);
      const dv = be.alloc(v.shape, 'float32', Tq === 0);
      const dS = be.alloc([B, H, Tq, Tk], 'float32', Dv === 0);
      if (Tq > 0 && Tk > 0) {
        // dV = P^T dY; dP = dY V^T; dS = softmax'(P) dP; dQ = scale dS K; dK = scale dS^T Q.
        gemm(be.ptr(p.probs), be.ptr(dy), be.ptr(dv), Tk, Dv, Tq, true, false, BH, Tq * Tk, Tq * Dv, Tk * Dv);
        if (Dv > 0) gemm(be.ptr(dy), be.ptr(v), be.ptr(dS), Tq, Tk, Dv, false, true, BH, Tq * Dv, Tk * Dv, Tq * Tk);
        addon.softmaxBackward(be.ptr(p.probs), be.ptr(dS), BH * Tq, Tk);
        if (D > 0) {
          gemm(be.ptr(dS), be.ptr(k), be.ptr(dq), Tq, D, Tk, false, false, BH, Tq * Tk, Tk * D, Tq * D, scale);
          gemm(be.ptr(dS), be.ptr(q), be.ptr(dk), Tk, D, Tq, true, false, BH, Tq * Tk, Tq * D, Tk * D, scale);
        }
      }
      be.disposeIntermediateTensorInfo(p.probs);
      const dbias = bias ? sumToShape(be, dS, bias.shape) : dS;
      return [dq, dk, dv, dbias];
    },
  };
}
