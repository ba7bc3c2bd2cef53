import * as tf from '@tensorflow/tfjs-core';
import { defineOp, OpInputError } from '../op.js';
import { requireFloat } from './util.js';

export interface AdamWAttrs extends Record<string, unknown> {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

function checkAttrs(a: AdamWAttrs): void {
  const bad = (name: string, why: string) => {
    throw new OpInputError(`TesseraAdamW: attr ${name} ${why}; got ${String(a[name])}.`);
  };
  if (!Number.isFinite(a.lr) || a.lr < 0) bad('lr', 'must be a finite number >= 0');
  if (!(a.beta1 >= 0 && a.beta1 < 1)) bad('beta1', 'must be in [0, 1)');
  if (!(a.beta2 >= 0 && a.beta2 < 1)) bad('beta2', 'must be in [0, 1)');
  if (!(a.eps >= 0) || !Number.isFinite(a.eps)) bad('eps', 'must be a finite number >= 0');
  if (!Number.isFinite(a.weightDecay) || a.weightDecay < 0) bad('weightDecay', 'must be a finite number >= 0');
  if (!Number.isInteger(a.step) || a.step < 1) bad('step', 'must be an integer >= 1 (the update about to be applied)');
}

/**
 * One AdamW update (decoupled weight decay), in torch.optim.AdamW's order of operations:
 * p ← p·(1 − lr·wd); m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
 * p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps).
 */
export const adamwOp = defineOp<'param' | 'grad' | 'm' | 'v', AdamWAttrs, never>({
  name: 'TesseraAdamW',
  description: 'AdamW parameter update: returns the new parameter, first and second moments.',
  inputs: ['param', 'grad', 'm', 'v'],
  outputs: ['param', 'm', 'v'],
  defaults: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
  inferOutputs(inputs, attrs) {
    checkAttrs(attrs);
    const p = requireFloat('TesseraAdamW', 'param', inputs.param);
    for (const name of ['grad', 'm', 'v'] as const) {
      const t = requireFloat('TesseraAdamW', name, inputs[name]);
      if (t.shape.join(',') !== p.shape.join(',')) {
        throw new OpInputError(
          `TesseraAdamW: ${name} shape [${t.shape.join(', ')}] must equal param shape [${p.shape.join(', ')}].`,
        );
      }
    }
    return [p, p, p].map((s) => ({ shape: s.shape, dtype: 'float32' as const }));
  },
  reference({ param, grad, m, v }, a) {
    return tf.tidy(() => {
      const decayed = tf.mul(param!, 1 - a.lr * a.weightDecay);
      const m1 = tf.add(tf.mul(m!, a.beta1), tf.mul(grad!, 1 - a.beta1));
      const v1 = tf.add(tf.mul(v!, a.beta2), tf.mul(tf.square(grad!), 1 - a.beta2));
      const biasCorrection1 = 1 - a.beta1 ** a.step;
      const biasCorrection2 = 1 - a.beta2 ** a.step;
      const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(biasCorrection2)), a.eps);
      const p1 = tf.sub(decayed, tf.mul(tf.div(m1, denom), a.lr / biasCorrection1));
      return [p1, m1, v1];
    });
  },
});

export function adamwUpdate(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  attrs: Partial<AdamWAttrs> & Pick<AdamWAttrs, 'lr' | 'step'>,
): { param: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  const [p1, m1, v1] = adamwOp({ param, grad, m, v }, attrs);
  return { param: p1!, m: m1!, v: v1! };
}
