// A compact GPT (nanoGPT layout, pre-LN, tied embeddings, tanh GELU) on tensor-core's
// Module and fused ops, for the benchmark and the cross-backend training test. It is
// deliberately self-contained: @tessera/transformer is the real model package; this one
// only has to match tools/bench-native/torch_bench.py op for op.
import {
  adamwUpdate,
  attention,
  gelu,
  layerNorm,
  Module,
  ModuleList,
  Rng,
  softmaxCrossEntropy,
  tf,
  trainStep,
} from '@tessera/tensor-core';

/** [B·T, nHead·headSize] rows of B sequences of length T -> [B, nHead, T, headSize]. */
export const splitHeads = (t, B, T, H) => tf.transpose(tf.reshape(t, [B, T, H, t.shape[1] / H]), [0, 2, 1, 3]);

/** [B, nHead, T, headSize] -> [B·T, nHead·headSize]. */
export const mergeHeads = (t) => {
  const [B, H, T, D] = t.shape;
  return tf.reshape(tf.transpose(t, [0, 2, 1, 3]), [B * T, H * D]);
};

export class Linear extends Module {
  constructor(rng, inFeatures, outFeatures, std = 0.02, { bias = true } = {}) {
    super();
    this.weight = this.registerParameter('weight', rng.normalTensor([inFeatures, outFeatures], std));
    this.bias = bias ? this.registerParameter('bias', tf.zeros([outFeatures])) : null;
  }
  /** x: [N, in] -> [N, out]. Tokens are kept flat so each projection is one sgemm. */
  forward(x) {
    const y = tf.matMul(x, this.weight.value);
    return this.bias ? tf.add(y, this.bias.value) : y;
  }
}

export class LayerNorm extends Module {
  constructor(features) {
    super();
    this.gamma = this.registerParameter('weight', tf.ones([features]));
    this.beta = this.registerParameter('bias', tf.zeros([features]));
  }
  forward(x) {
    return layerNorm(x, this.gamma.value, this.beta.value);
  }
}

class Block extends Module {
  constructor(rng, cfg) {
    super();
    const { nEmbd: E, nLayer } = cfg;
    const projStd = 0.02 / Math.sqrt(2 * nLayer);
    this.cfg = cfg;
    this.ln1 = this.registerModule('ln_1', new LayerNorm(E));
    this.cAttn = this.registerModule('c_attn', new Linear(rng, E, 3 * E));
    this.cProj = this.registerModule('c_proj', new Linear(rng, E, E, projStd));
    this.ln2 = this.registerModule('ln_2', new LayerNorm(E));
    this.fc = this.registerModule('c_fc', new Linear(rng, E, 4 * E));
    this.mlpProj = this.registerModule('mlp_proj', new Linear(rng, 4 * E, E, projStd));
  }
  forward(x, B, T) {
    const H = this.cfg.nHead;
    const [q, k, v] = tf.split(this.cAttn.forward(this.ln1.forward(x)), 3, 1).map((t) => splitHeads(t, B, T, H));
    const merged = mergeHeads(attention(q, k, v, { causal: true }));
    const x1 = tf.add(x, this.cProj.forward(merged));
    const h = gelu(this.fc.forward(this.ln2.forward(x1)), 'tanh');
    return tf.add(x1, this.mlpProj.forward(h));
  }
}

export class GPT extends Module {
  /** cfg: { nLayer, nHead, nEmbd, blockSize, vocabSize }, seed. */
  constructor(cfg, seed = 'gpt') {
    super();
    const rng = new Rng(seed);
    this.cfg = cfg;
    this.wte = this.registerParameter('wte', rng.normalTensor([cfg.vocabSize, cfg.nEmbd], 0.02));
    this.wpe = this.registerParameter('wpe', rng.normalTensor([cfg.blockSize, cfg.nEmbd], 0.02));
    this.blocks = this.registerModule('h', new ModuleList());
    for (let l = 0; l < cfg.nLayer; l++) this.blocks.push(new Block(rng, cfg));
    this.lnF = this.registerModule('ln_f', new LayerNorm(cfg.nEmbd));
  }

  /** Mean next-token cross-entropy of idx [B, T] (int32) against targets [B, T]. */
  loss(idx, targets) {
    const [B, T] = idx.shape;
    const E = this.cfg.nEmbd;
    const tok = tf.reshape(tf.gather(this.wte.value, tf.reshape(idx, [B * T])), [B, T, E]);
    const pos = tf.slice(this.wpe.value, [0, 0], [T, E]);
    let x = tf.reshape(tf.add(tok, pos), [B * T, E]);
    for (const block of this.blocks) x = block.forward(x, B, T);
    const logits = tf.matMul(this.lnF.forward(x), this.wte.value, false, true); // tied head: [B*T, V]
    return softmaxCrossEntropy(logits, tf.reshape(targets, [B * T]));
  }
}

/** A non-trainable variable of zeros shaped like `t` (the temporary zeros tensor is freed). */
function zeroState(t) {
  const zeros = tf.zerosLike(t);
  const v = tf.variable(zeros, false);
  zeros.dispose();
  return v;
}

/** AdamW state for every trainable parameter, updated with the fused TesseraAdamW op. */
export class AdamW {
  constructor(model, { lr = 3e-4, weightDecay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8 } = {}) {
    this.model = model;
    this.attrs = { lr, weightDecay, beta1, beta2, eps };
    this.step = 0;
    this.state = new Map(
      model
        .namedParameters({ trainableOnly: true })
        .map(([name, p]) => [name, { p, m: zeroState(p.value), v: zeroState(p.value) }]),
    );
  }
  update(grads) {
    this.step++;
    for (const [name, g] of grads) {
      const s = this.state.get(name);
      const r = adamwUpdate(s.p.value, g, s.m, s.v, { ...this.attrs, step: this.step });
      s.p.assign(r.param);
      s.m.assign(r.m);
      s.v.assign(r.v);
    }
  }
  dispose() {
    for (const s of this.state.values()) {
      s.m.dispose();
      s.v.dispose();
    }
  }
}

/** One forward + backward + AdamW step; returns the loss. */
export function gptTrainStep(model, optimizer, idx, targets) {
  return trainStep(
    model,
    () => model.loss(idx, targets),
    (grads) => optimizer.update(grads),
  );
}

/** Deterministic token batches (uniform over the vocabulary) from a seed. */
export function randomBatch(cfg, batchSize, seed) {
  const rng = new Rng(seed);
  const n = batchSize * cfg.blockSize;
  const data = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) data[i] = rng.int(cfg.vocabSize);
  return {
    idx: tf.tensor2d(data.subarray(0, n), [batchSize, cfg.blockSize], 'int32'),
    targets: tf.tensor2d(data.subarray(1, n + 1), [batchSize, cfg.blockSize], 'int32'),
    data,
  };
}
