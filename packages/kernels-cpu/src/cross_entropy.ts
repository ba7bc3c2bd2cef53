import {
  type FusedKernelTable,
  softmaxCrossEntropyGradOp,
  softmaxCrossEntropyOp,
  TesseraError,
} from '@tessera/tensor-core';
import type { TensorInfo } from '@tessera/tensor-core/tfjs';
import { output, values } from './access.js';

interface Rows {
  logits: ArrayLike<number>;
  labels: ArrayLike<number>;
  N: number;
  V: number;
  ignoreIndex: number;
  counted: number;
}

/**
 * Counts the labels that take part (not `ignoreIndex`), and throws the error every backend
 * gives for a label outside [0, V). Backends that read labels on the host call this too.
 */
export function countLabels(op: string, labels: ArrayLike<number>, V: number, ignoreIndex: number): number {
  let counted = 0;
  for (let n = 0; n < labels.length; n++) {
    const y = labels[n]!;
    if (y === ignoreIndex) continue;
    if (y < 0 || y >= V) {
      throw new TesseraError(
        `${op}: label ${y} at position ${n} is outside the vocabulary [0, ${V}) and is not the ignore index ${ignoreIndex}. ` +
          'Check the tokenizer vocabulary size against the model, or mark the position with the ignore index.',
      );
    }
    counted++;
  }
  return counted;
}

function readRows(op: string, backend: unknown, logits: TensorInfo, labels: TensorInfo, ignoreIndex: number): Rows {
  const V = logits.shape[logits.shape.length - 1]!;
  const ls = values(backend, logits);
  const ys = values(backend, labels);
  const counted = countLabels(op, ys, V, ignoreIndex);
  return { logits: ls, labels: ys, N: ys.length, V, ignoreIndex, counted };
}

/** log-sum-exp of one row, shifted by its max (float64). */
function rowLogSumExp(logits: ArrayLike<number>, base: number, V: number): { max: number; lse: number } {
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[base + v]!);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[base + v]! - max);
  return { max, lse: max + Math.log(sum) };
}

/** Softmax cross-entropy and its gradient: a float64 log-sum-exp per row. */
export const crossEntropyKernels = {
  TesseraSoftmaxCrossEntropy: ({ inputs, backend, attrs }) => {
    const { ignoreIndex } = attrs;
    const r = readRows(softmaxCrossEntropyOp.name, backend, inputs.logits, inputs.labels, ignoreIndex);
    let total = 0;
    for (let n = 0; n < r.N; n++) {
      const y = r.labels[n]!;
      if (y === ignoreIndex) continue;
      total += rowLogSumExp(r.logits, n * r.V, r.V).lse - r.logits[n * r.V + y]!;
    }
    const norm = attrs.reduction === 'mean' ? Math.max(r.counted, 1) : 1;
    return output(backend, [], Float32Array.of(total / norm));
  },

  TesseraSoftmaxCrossEntropyGrad: ({ inputs, backend, attrs }) => {
    const { ignoreIndex } = attrs;
    const r = readRows(softmaxCrossEntropyGradOp.name, backend, inputs.logits, inputs.labels, ignoreIndex);
    const dy = values(backend, inputs.dy)[0]!;
    const norm = attrs.reduction === 'mean' ? Math.max(r.counted, 1) : 1;
    const scale = dy / norm;
    const d = new Float32Array(r.N * r.V);
    for (let n = 0; n < r.N; n++) {
      const y = r.labels[n]!;
      if (y === ignoreIndex) continue;
      const base = n * r.V;
      const { lse } = rowLogSumExp(r.logits, base, r.V);
      for (let v = 0; v < r.V; v++) d[base + v] = (Math.exp(r.logits[base + v]! - lse) - (v === y ? 1 : 0)) * scale;
    }
    return output(backend, inputs.logits.shape, d);
  },
} satisfies Partial<FusedKernelTable>;
