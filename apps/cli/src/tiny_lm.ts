import { type Rng, softmaxCrossEntropy, type tf } from '@tessera/tensor-core';
import { GPT2LMHeadModel, parseGptConfig } from '@tessera/transformer';

export interface TinyLmConfig {
  vocabSize: number;
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  dropout: number;
}

/**
 * The smoke job's character-level GPT: @tessera/transformer's GPT-2 (pre-LN blocks, tanh
 * GELU, head tied to the token embedding) at the smoke config's size, so the smoke path
 * exercises the same model the trainers and the bench run.
 */
export class TinyLm extends GPT2LMHeadModel {
  constructor(
    readonly shape: TinyLmConfig,
    rng: Rng,
  ) {
    super(
      parseGptConfig({
        vocab_size: shape.vocabSize,
        n_positions: shape.blockSize,
        n_layer: shape.nLayer,
        n_head: shape.nHead,
        n_embd: shape.nEmbd,
        activation_function: 'gelu_new',
        resid_pdrop: shape.dropout,
        embd_pdrop: shape.dropout,
        attn_pdrop: shape.dropout,
        tie_word_embeddings: true,
      }),
      rng,
    );
  }

  /** Logits [B, T, vocabSize] for token ids [B, T]. */
  logits(ids: tf.Tensor): tf.Tensor {
    return this.forward({ inputIds: ids }).logits;
  }

  /**
   * Mean next-token cross-entropy against targets [B, T] (the ids shifted by one in the
   * text): all T positions count, where the model's labels path would shift inside and
   * score T − 1.
   */
  loss(ids: tf.Tensor, targets: tf.Tensor): tf.Scalar {
    return softmaxCrossEntropy(this.logits(ids), targets);
  }
}
