import { dropout, Rng, TesseraError, tf } from '@tessera/tensor-core';
import { Linear } from '@tessera/transformer';

export interface LoraLayerOptions {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  /** rsLoRA: scale α/√r instead of α/r (keeps the update's size steady as r grows). */
  useRslora: boolean;
}

/** The factor on B·A: α/r (LoRA), or α/√r (rsLoRA). */
export function loraScale(options: Pick<LoraLayerOptions, 'r' | 'loraAlpha' | 'useRslora'>): number {
  return options.useRslora ? options.loraAlpha / Math.sqrt(options.r) : options.loraAlpha / options.r;
}

/**
 * PyTorch's kaiming_uniform_(w, a=√5) on a [fanOut, fanIn] weight, as peft initialises
 * lora_A: gain √(2/(1+a²)) = √(1/3), bound = gain·√(3/fanIn) = 1/√fanIn.
 */
export function kaimingUniformA(shape: [number, number], rng: Rng): tf.Tensor {
  const bound = 1 / Math.sqrt(shape[1]);
  return rng.uniformTensor(shape, -bound, bound);
}

/**
 * LoRA on one Linear: y = base(x) + scale·B(A(dropout(x))), with lora_A [r, in] and lora_B
 * [out, r] (peft's shapes, whatever the base layout) attached to the base Linear as its
 * children `lora_A` / `lora_B`, so their names are `<layer>.lora_A.weight` and they share
 * the base's train/eval mode. The base Linear's own forward is wrapped on the instance,
 * not forked: the model's code calls `layer.forward(x)` as before, and detach() restores it.
 */
export class LoraLayer {
  readonly A: Linear;
  readonly B: Linear;
  readonly scale: number;
  #merged = false;

  constructor(
    readonly base: Linear,
    readonly options: LoraLayerOptions,
    initRng: Rng,
    /** The model's dropout stream (its state is part of an exact resume). */
    private readonly dropoutRng: Rng,
  ) {
    const { r } = options;
    if (!(Number.isInteger(r) && r > 0)) throw new TesseraError(`LoRA rank r must be a positive integer; got ${r}.`);
    if (r > Math.min(base.inFeatures, base.outFeatures))
      throw new TesseraError(
        `LoRA rank r = ${r} exceeds the layer's size (${base.inFeatures} -> ${base.outFeatures}); a smaller r is the point of LoRA.`,
      );
    this.scale = loraScale(options);
    // Built with a scratch stream, then set: initRng draws only A's values, as peft's init does.
    const scratch = new Rng(0);
    this.A = new Linear(base.inFeatures, r, scratch, { bias: false, std: 0 }); // weight [r, in]
    this.B = new Linear(r, base.outFeatures, scratch, { bias: false, std: 0 }); // weight [out, r], zero
    const initialA = kaimingUniformA([r, base.inFeatures], initRng);
    this.A.weight.assign(initialA);
    initialA.dispose();
    base.addModule('lora_A', this.A);
    base.addModule('lora_B', this.B);
    const baseForward = Linear.prototype.forward;
    // An own property shadows the prototype's forward; deleting it (detach) restores the plain layer.
    Object.defineProperty(base, 'forward', {
      configurable: true,
      writable: true,
      value: (x: tf.Tensor) => {
        const y = baseForward.call(base, x); // [..., out]
        return this.#merged ? y : tf.add(y, this.delta(x));
      },
    });
  }

  get merged(): boolean {
    return this.#merged;
  }

  /** scale·B(A(dropout(x))) for x [..., in] -> [..., out]. */
  delta(x: tf.Tensor): tf.Tensor {
    const dropped = dropout(x, this.options.loraDropout, this.dropoutRng, this.base.training);
    const low = this.A.forward(dropped); // [..., r]
    return tf.mul(this.B.forward(low), this.scale); // [..., out]
  }

  /** scale·B·A in the base weight's own layout ([out, in], or [in, out] for Conv1D). */
  deltaWeight(): tf.Tensor {
    return tf.tidy(() => {
      const product = tf.mul(tf.matMul(this.B.weight.value, this.A.weight.value), this.scale); // [out, in]
      return this.base.layout === 'inOut' ? tf.transpose(product) : product; // base layout
    });
  }

  /** W += scale·B·A: the forward then costs what the base layer does. */
  merge(): void {
    if (this.#merged) return;
    this.#addToBase(1);
    this.#merged = true;
  }

  /** W -= scale·B·A: back to the base weight, exact up to float32 rounding of the sum. */
  unmerge(): void {
    if (!this.#merged) return;
    this.#addToBase(-1);
    this.#merged = false;
  }

  #addToBase(sign: 1 | -1): void {
    const delta = this.deltaWeight();
    const updated = tf.tidy(() => tf.add(this.base.weight.value, tf.mul(delta, sign)));
    this.base.weight.assign(updated);
    tf.dispose([delta, updated]);
  }

  /** Removes lora_A / lora_B from the base layer and frees them; the layer is a plain Linear again. */
  detach(): void {
    this.base.removeModule('lora_A');
    this.base.removeModule('lora_B');
    Reflect.deleteProperty(this.base, 'forward');
    this.A.dispose();
    this.B.dispose();
  }
}
