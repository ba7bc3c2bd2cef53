import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError, type TensorSpec } from '../op.js';
import { lastDim, requireFloat } from './util.js';

export interface CrossEntropyAttrs extends Record<string, unknown> {
  /** Label value that contributes nothing (padding, unmasked MLM positions); PyTorch's default is -100. */
  ignoreIndex: number;
  /** "mean" over non-ignored positions (0 when all are ignored), or "sum". */
  reduction: 'mean' | 'sum';
}

function check(op: string, logits: TensorSpec | undefined, labels: TensorSpec | undefined, attrs: CrossEntropyAttrs) {
  const l = requireFloat(op, 'logits', logits);
  if (!labels) throw new OpInputError(`${op}: input "labels" is required.`);
  if (labels.dtype !== 'int32') {
    throw new OpInputError(`${op}: input "labels" must be int32 class ids; got ${labels.dtype}.`);
  }
  const lead = l.shape.slice(0, -1);
  if (l.shape.length < 1 || labels.shape.length !== lead.length || labels.shape.some((d, i) => d !== lead[i])) {
    throw new OpInputError(
      `${op}: labels shape [${labels.shape.join(', ')}] must equal logits shape without its last (vocabulary) axis, ` +
        `[${lead.join(', ')}].`,
    );
  }
  if (attrs.reduction !== 'mean' && attrs.reduction !== 'sum') {
    throw new OpInputError(`${op}: attr reduction must be "mean" or "sum"; got ${JSON.stringify(attrs.reduction)}.`);
  }
  if (!Number.isInteger(attrs.ignoreIndex)) {
    throw new OpInputError(`${op}: attr ignoreIndex must be an integer; got ${String(attrs.ignoreIndex)}.`);
  }
  return l;
}

/** Rows as [N, V], the mask of counted rows and the normaliser for the chosen reduction. */
function flatten(logits: tf.Tensor, labels: tf.Tensor, attrs: CrossEntropyAttrs) {
  const vocab = lastDim(logits.shape);
  const rows = tf.reshape(logits, [-1, vocab]); // [N, V]
  const flatLabels = tf.reshape(labels, [-1]); // [N]
  const counted = tf.notEqual(flatLabels, attrs.ignoreIndex);
  const safeLabels = tf.where(counted, flatLabels, tf.zerosLike(flatLabels));
  const weight = tf.cast(counted, 'float32');
  const norm = attrs.reduction === 'mean' ? tf.maximum(tf.sum(weight), 1) : tf.scalar(1);
  return { vocab, rows, safeLabels, weight, norm };
}

/** One-hot rows of the labels, [N, V]; tf.oneHot rejects a vocabulary of one. */
function oneHotRows(labels: tf.Tensor, vocab: number): tf.Tensor {
  const classes = tf.range(0, vocab, 1, 'int32'); // [V]
  return tf.cast(tf.equal(tf.expandDims(labels, 1), tf.expandDims(classes, 0)), 'float32'); // [N, V]
}

export const softmaxCrossEntropyGradOp = defineOp<'dy' | 'logits' | 'labels', CrossEntropyAttrs, never>({
  name: 'TesseraSoftmaxCrossEntropyGrad',
  description: 'Backward of softmax cross-entropy: dlogits = (softmax - onehot) * dy / count.',
  inputs: ['dy', 'logits', 'labels'],
  outputs: ['dlogits'],
  defaults: { ignoreIndex: -100, reduction: 'mean' },
  inferOutputs(inputs, attrs) {
    const l = check('TesseraSoftmaxCrossEntropyGrad', inputs.logits, inputs.labels, attrs);
    return [{ shape: l.shape, dtype: 'float32' }];
  },
  reference({ dy, logits, labels }, attrs) {
    return tf.tidy(() => {
      const { vocab, rows, safeLabels, weight, norm } = flatten(logits!, labels!, attrs);
      const probs = tf.softmax(rows);
      const target = oneHotRows(safeLabels, vocab);
      const scale = tf.div(tf.mul(weight, tf.reshape(dy!, [])), norm); // [N]
      const d = tf.mul(tf.sub(probs, target), tf.expandDims(scale, 1));
      return tf.reshape(d, logits!.shape);
    });
  },
});

export const softmaxCrossEntropyOp = defineOp<'logits' | 'labels', CrossEntropyAttrs, never>({
  name: 'TesseraSoftmaxCrossEntropy',
  description: 'Softmax cross-entropy with integer labels and an ignore index; a scalar loss.',
  inputs: ['logits', 'labels'],
  outputs: ['loss'],
  nonDifferentiable: ['labels'],
  defaults: { ignoreIndex: -100, reduction: 'mean' },
  inferOutputs(inputs, attrs) {
    check('TesseraSoftmaxCrossEntropy', inputs.logits, inputs.labels, attrs);
    return [{ shape: [], dtype: 'float32' }];
  },
  reference({ logits, labels }, attrs) {
    return tf.tidy(() => {
      const { vocab, rows, safeLabels, weight, norm } = flatten(logits!, labels!, attrs);
      const lse = tf.logSumExp(rows, -1); // [N]
      const picked = tf.sum(tf.mul(rows, oneHotRows(safeLabels, vocab)), -1); // [N]
      return tf.div(tf.sum(tf.mul(tf.sub(lse, picked), weight)), norm);
    });
  },
  gradient([dy], { inputs, attrs }) {
    const [dlogits] = softmaxCrossEntropyGradOp({ dy, logits: inputs.logits, labels: inputs.labels }, attrs);
    return { logits: dlogits };
  },
});

/**
 * Cross-entropy of softmax(logits) against integer labels, PyTorch semantics:
 * positions labelled `ignoreIndex` count for nothing; "mean" divides by the counted positions.
 */
export function softmaxCrossEntropy(
  logits: tf.Tensor,
  labels: tf.Tensor,
  options: Partial<CrossEntropyAttrs> = {},
): tf.Scalar {
  return softmaxCrossEntropyOp({ logits, labels }, options)[0] as tf.Scalar;
}
