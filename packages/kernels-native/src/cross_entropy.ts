import { countLabels } from '@tessera/kernels-cpu';
import { type FusedKernelTable, softmaxCrossEntropyGradOp, softmaxCrossEntropyOp } from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import { asF32, asI32, type NativeContext, out, sizeOf, type WithBackend } from './storage.js';

/** Labels as int32, checked by the reference kernels' own check (same message). */
function readLabels(op: string, args: WithBackend, logits: TensorInfo, labels: TensorInfo, ignoreIndex: number) {
  const V = logits.shape[logits.shape.length - 1]!;
  const ys = asI32(args, labels);
  return { V, ys, counted: countLabels(op, ys, V, ignoreIndex) };
}

/** Softmax cross-entropy and its gradient: float64 log-sum-exp per row in C++. */
export function crossEntropyKernels({ addon, pool }: NativeContext) {
  return {
    TesseraSoftmaxCrossEntropy: (args) => {
      const { logits, labels } = args.inputs;
      const { ignoreIndex } = args.attrs;
      const { V, ys, counted } = readLabels(softmaxCrossEntropyOp.name, args, logits, labels, ignoreIndex);
      const total = ys.length ? addon.crossEntropy(asF32(args, logits), ys, ys.length, V, ignoreIndex) : 0;
      const norm = args.attrs.reduction === 'mean' ? Math.max(counted, 1) : 1;
      return out(args, [], Float32Array.of(total / norm));
    },

    TesseraSoftmaxCrossEntropyGrad: (args) => {
      const { dy, logits, labels } = args.inputs;
      const { ignoreIndex } = args.attrs;
      const { V, ys, counted } = readLabels(softmaxCrossEntropyGradOp.name, args, logits, labels, ignoreIndex);
      const norm = args.attrs.reduction === 'mean' ? Math.max(counted, 1) : 1;
      const scale = asF32(args, dy)[0]! / norm;
      const d = pool.alloc(sizeOf(logits.shape));
      if (ys.length) addon.crossEntropyGrad(asF32(args, logits), ys, d, ys.length, V, ignoreIndex, scale);
      return out(args, logits.shape, d);
    },
  } satisfies Partial<FusedKernelTable>;
}
