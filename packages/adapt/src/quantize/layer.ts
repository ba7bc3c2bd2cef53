import { int8Linear, tf } from '@tessera/tensor-core';
import type { Linear } from '@tessera/transformer';
import { dequantizeWeight } from './weights.js';

/**
 * One Linear running TesseraInt8Linear: the int8 weight q (int32 [out, in]) and its
 * per-output scales are held here, and the Linear's forward is wrapped on the instance (as
 * LoRA wraps it), so the model's code calls `layer.forward(x)` as before. The layer's own
 * float32 weight is set to the dequantized q·scale: anything that still reads it (a state
 * dict, the fp32 model) sees what the int8 layer computes with.
 */
export class QuantizedLinear {
  constructor(
    readonly name: string,
    readonly base: Linear,
    readonly q: tf.Tensor2D,
    readonly scales: tf.Tensor1D,
  ) {
    const deq = dequantizeWeight(base, q, scales);
    base.weight.assign(deq);
    deq.dispose();
    Object.defineProperty(base, 'forward', {
      configurable: true,
      writable: true,
      value: (x: tf.Tensor) =>
        tf.tidy(() => {
          const lead = x.shape.slice(0, -1);
          const flat = tf.reshape(x, [-1, base.inFeatures]); // [N, in]
          const y = int8Linear(flat, this.q, this.scales, base.bias?.value); // [N, out]
          return tf.reshape(y, [...lead, base.outFeatures]); // [..., out]
        }),
    });
  }

  /** Bytes the int8 form takes on disk: 1 per weight, 4 per scale. */
  get int8Bytes(): number {
    return this.q.size + 4 * this.scales.size;
  }

  /** Back to the float32 Linear (with the dequantized weight), freeing q and the scales. */
  detach(): void {
    Reflect.deleteProperty(this.base, 'forward');
    tf.dispose([this.q, this.scales]);
  }
}
