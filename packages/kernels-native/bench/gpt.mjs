// The benchmark's GPT: @tessera/transformer's GPT2LMHeadModel, configured to compute what
// tools/bench-native/torch_bench.py computes (pre-LN, tied embeddings, tanh GELU, no
// dropout), trained with @tessera/optim's AdamW at the peer's settings. Also the model of
// kernels-native's training tests and of kernels-webgpu's bench.
import { AdamW as OptimAdamW } from '@tessera/optim';
import { Rng, softmaxCrossEntropy, tf, trainStep } from '@tessera/tensor-core';
import { GPT2LMHeadModel, parseGptConfig } from '@tessera/transformer';

/** The HF GPT-2 config for the bench's shape names: dropout off, so a step is deterministic and matches the peer. */
export function gptConfig({ nLayer, nHead, nEmbd, blockSize, vocabSize }) {
  return parseGptConfig({
    n_layer: nLayer,
    n_head: nHead,
    n_embd: nEmbd,
    n_positions: blockSize,
    vocab_size: vocabSize,
    activation_function: 'gelu_new',
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    tie_word_embeddings: true,
  });
}

export class GPT extends GPT2LMHeadModel {
  /** cfg: { nLayer, nHead, nEmbd, blockSize, vocabSize }, seed. */
  constructor(cfg, seed = 'gpt') {
    super(gptConfig(cfg), new Rng(seed));
    this.cfg = cfg;
  }

  /**
   * Mean next-token cross-entropy of idx [B, T] (int32) against targets [B, T]: every one
   * of the T positions is scored (nanoGPT's convention, and the peer's), where the model's
   * own labels path would shift inside and score T − 1.
   */
  loss(idx, targets) {
    const [B, T] = idx.shape;
    const { logits } = this.forward({ inputIds: idx }); // [B, T, V]
    return softmaxCrossEntropy(tf.reshape(logits, [B * T, this.cfg.vocabSize]), tf.reshape(targets, [B * T]));
  }
}

/** torch_bench.py's torch.optim.AdamW: lr 3e-4, betas 0.9 / 0.95, eps 1e-8, weight decay 0.1 on every parameter. */
export class AdamW extends OptimAdamW {
  constructor(model, { lr = 3e-4, weightDecay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8 } = {}) {
    super(model, { lr, weightDecay, beta1, beta2, eps });
  }
}

/** One forward + backward + AdamW step; returns the loss. */
export function gptTrainStep(model, optimizer, idx, targets) {
  return trainStep(
    model,
    () => model.loss(idx, targets),
    (grads) => optimizer.step(grads),
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
