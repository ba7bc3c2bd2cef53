import {
  Module,
  ModuleList,
  type Parameter,
  type Rng,
  attention,
  dropout,
  gelu,
  layerNorm,
  softmaxCrossEntropy,
  tf,
} from '@tessera/tensor-core';

export interface TinyLmConfig {
  vocabSize: number;
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  dropout: number;
}

/** x·W + b over the last axis. */
class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(inFeatures: number, outFeatures: number, rng: Rng, std = 0.02) {
    super();
    this.weight = this.registerParameter('weight', rng.normalTensor([inFeatures, outFeatures], std));
    this.bias = this.registerParameter('bias', tf.zeros([outFeatures]));
  }
  forward(x: tf.Tensor): tf.Tensor {
    const [B, T, C] = x.shape as [number, number, number];
    const y = tf.matMul(tf.reshape(x, [B * T, C]), this.weight.value); // [B*T, out]
    return tf.reshape(tf.add(y, this.bias.value), [B, T, -1]); // [B, T, out]
  }
}

class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(channels: number) {
    super();
    this.weight = this.registerParameter('weight', tf.ones([channels]));
    this.bias = this.registerParameter('bias', tf.zeros([channels]));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.weight.value, this.bias.value, 1e-5);
  }
}

/** A pre-LN GPT block: x + attn(ln(x)); x + mlp(ln(x)). */
class Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: Linear;
  readonly proj: Linear;
  readonly ln2: LayerNorm;
  readonly fc: Linear;
  readonly fcProj: Linear;

  constructor(
    private readonly config: TinyLmConfig,
    private readonly rng: Rng,
  ) {
    super();
    const { nEmbd, nLayer } = config;
    const residualStd = 0.02 / Math.sqrt(2 * nLayer);
    this.ln1 = this.registerModule('ln1', new LayerNorm(nEmbd));
    this.attn = this.registerModule('attn', new Linear(nEmbd, 3 * nEmbd, rng));
    this.proj = this.registerModule('proj', new Linear(nEmbd, nEmbd, rng, residualStd));
    this.ln2 = this.registerModule('ln2', new LayerNorm(nEmbd));
    this.fc = this.registerModule('fc', new Linear(nEmbd, 4 * nEmbd, rng));
    this.fcProj = this.registerModule('fcProj', new Linear(4 * nEmbd, nEmbd, rng, residualStd));
  }

  forward(x: tf.Tensor): tf.Tensor {
    const [B, T, C] = x.shape as [number, number, number];
    const { nHead } = this.config;
    const headSize = C / nHead;
    const qkv = this.attn.forward(this.ln1.forward(x)); // [B, T, 3C]
    const [q, k, v] = tf.split(qkv, 3, 2).map(
      (t) => tf.transpose(tf.reshape(t, [B, T, nHead, headSize]), [0, 2, 1, 3]), // [B, nHead, T, headSize]
    ) as [tf.Tensor, tf.Tensor, tf.Tensor];
    const y = attention(q, k, v, { causal: true }); // [B, nHead, T, headSize]
    const merged = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, C]); // [B, T, C]
    const afterAttn = tf.add(x, dropout(this.proj.forward(merged), this.config.dropout, this.rng, this.training));
    const hidden = gelu(this.fc.forward(this.ln2.forward(afterAttn)), 'tanh'); // [B, T, 4C]
    return tf.add(afterAttn, dropout(this.fcProj.forward(hidden), this.config.dropout, this.rng, this.training));
  }
}

/**
 * A tiny GPT used by the smoke job until the transformer package lands: token and
 * position embeddings, pre-LN blocks, final norm, head tied to the token embedding.
 */
export class TinyLm extends Module {
  readonly wte: Parameter;
  readonly wpe: Parameter;
  readonly blocks: ModuleList<Block>;
  readonly lnF: LayerNorm;

  constructor(
    readonly config: TinyLmConfig,
    rng: Rng,
  ) {
    super();
    if (config.nEmbd % config.nHead !== 0) {
      throw new Error(`nEmbd (${config.nEmbd}) must be divisible by nHead (${config.nHead}).`);
    }
    this.wte = this.registerParameter('wte', rng.normalTensor([config.vocabSize, config.nEmbd], 0.02));
    this.wpe = this.registerParameter('wpe', rng.normalTensor([config.blockSize, config.nEmbd], 0.02));
    this.blocks = this.registerModule(
      'h',
      new ModuleList(Array.from({ length: config.nLayer }, () => new Block(config, rng))),
    );
    this.lnF = this.registerModule('lnF', new LayerNorm(config.nEmbd));
  }

  /** Logits [B, T, vocabSize] for token ids [B, T]. */
  forward(ids: tf.Tensor): tf.Tensor {
    const [B, T] = ids.shape as [number, number];
    if (T > this.config.blockSize) throw new Error(`Sequence length ${T} exceeds blockSize ${this.config.blockSize}.`);
    const tokens = tf.gather(this.wte.value, tf.reshape(ids, [-1])); // [B*T, C]
    const positions = tf.slice(this.wpe.value, [0, 0], [T, this.config.nEmbd]); // [T, C]
    let x = tf.add(tf.reshape(tokens, [B, T, this.config.nEmbd]), positions); // [B, T, C]
    for (const block of this.blocks) x = block.forward(x);
    x = this.lnF.forward(x);
    const logits = tf.matMul(tf.reshape(x, [B * T, this.config.nEmbd]), this.wte.value, false, true); // [B*T, V]
    return tf.reshape(logits, [B, T, this.config.vocabSize]); // [B, T, V]
  }

  /** Mean next-token cross-entropy. */
  loss(ids: tf.Tensor, targets: tf.Tensor): tf.Scalar {
    return softmaxCrossEntropy(this.forward(ids), targets);
  }
}
