import { tf } from '@tessera/tensor-core';

/**
 * Soft-target KL divergence at temperature T, times T² (Hinton et al.; DistilBERT's
 * `KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T)) · T²`): per row
 * Σ_v p_t (log p_t − log p_s), averaged over the rows whose weight is 1.
 * `studentLogits`, `teacherLogits`: [..., V]; `rowWeights`: [...] of 0/1 (absent: every row).
 */
export function softTargetKl(
  studentLogits: tf.Tensor,
  teacherLogits: tf.Tensor,
  temperature: number,
  rowWeights?: tf.Tensor,
): tf.Scalar {
  return tf.tidy(() => {
    const vocab = studentLogits.shape[studentLogits.rank - 1]!;
    let student = tf.reshape(studentLogits, [-1, vocab]); // [rows, V]
    let teacher = tf.reshape(teacherLogits, [-1, vocab]); // [rows, V]
    let weights = rowWeights ? tf.reshape(tf.cast(rowWeights, 'float32'), [-1]) : undefined; // [rows]
    const kept = weights ? keptRows(weights) : undefined;
    if (kept) {
      // Only the kept rows go through the softmaxes (MLM's masked tokens are 15 % of them).
      const index = tf.tensor1d(kept, 'int32');
      student = tf.gather(student, index); // [kept, V]
      teacher = tf.gather(teacher, index); // [kept, V]
      weights = undefined;
    }
    const logStudent = tf.logSoftmax(tf.div(student, temperature)); // [rows, V]
    const logTeacher = tf.logSoftmax(tf.div(teacher, temperature)); // [rows, V]
    const perRow = tf.sum(tf.mul(tf.exp(logTeacher), tf.sub(logTeacher, logStudent)), -1); // [rows]
    const w = weights ?? tf.onesLike(perRow);
    const mean = tf.div(tf.sum(tf.mul(perRow, w)), tf.maximum(tf.sum(w), 1));
    return tf.mul(mean, temperature * temperature) as tf.Scalar;
  });
}

/**
 * The indices of the rows whose weight is not 0, read back (a [B·T] mask, small); undefined
 * where the backend cannot read synchronously, and then the rows are weighted instead.
 */
function keptRows(weights: tf.Tensor): number[] | undefined {
  let values: ArrayLike<number>;
  try {
    values = weights.dataSync() as Float32Array;
  } catch {
    return undefined;
  }
  const kept: number[] = [];
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) kept.push(i);
  return kept.length < values.length ? kept : undefined;
}

/** PyTorch's cosine_embedding_loss epsilon (added to each squared magnitude). */
const COSINE_EPS = 1e-12;

/**
 * DistilBERT's cosine loss: `CosineEmbeddingLoss` with target 1 on the hidden states of the
 * positions the attention mask keeps, i.e. mean over those positions of 1 − cos(s, t).
 * `studentHidden`, `teacherHidden`: [B, T, H]; `attentionMask`: [B, T] (absent: every position).
 */
export function maskedCosineLoss(
  studentHidden: tf.Tensor,
  teacherHidden: tf.Tensor,
  attentionMask?: tf.Tensor,
): tf.Scalar {
  return tf.tidy(() => {
    const dot = tf.sum(tf.mul(studentHidden, teacherHidden), -1); // [B, T]
    const studentSq = tf.add(tf.sum(tf.square(studentHidden), -1), COSINE_EPS); // [B, T]
    const teacherSq = tf.add(tf.sum(tf.square(teacherHidden), -1), COSINE_EPS); // [B, T]
    const cosine = tf.div(dot, tf.sqrt(tf.mul(studentSq, teacherSq))); // [B, T]
    const mask = attentionMask ? tf.cast(attentionMask, 'float32') : tf.onesLike(cosine);
    return tf.div(tf.sum(tf.mul(tf.sub(1, cosine), mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}
