import { beforeAll, describe, expect, it } from 'vitest';
import {
  Module,
  ModuleList,
  type Rng,
  Rng as SeededRng,
  adamwUpdate,
  registry,
  resolveConfig,
  tf,
  trainStep,
  useBackend,
  z,
} from '@tessera/tensor-core';
import '@tessera/kernels-cpu';
import {
  activation,
  Embedding,
  Linear,
  type ModelInputs,
  type ModelOutput,
  mergeHeads,
  PretrainedModel,
  RMSNorm,
  scaledDotProductAttention,
  splitHeads,
  lmLoss,
} from '@tessera/transformer';

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

// ---- A custom variant composed from the blocks, outside the package --------------------
// A decoder with RMSNorm, no biases and a gated GELU MLP, registered under a new name.

interface TinyLlamaConfig extends Record<string, unknown> {
  vocab_size: number;
  hidden_size: number;
  num_layers: number;
  num_heads: number;
  intermediate_size: number;
}

class GatedMlp extends Module {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
  readonly #act = activation('gelu_new');
  constructor(c: TinyLlamaConfig, rng: Rng) {
    super();
    this.gate = this.registerModule('gate', new Linear(c.hidden_size, c.intermediate_size, rng, { bias: false }));
    this.up = this.registerModule('up', new Linear(c.hidden_size, c.intermediate_size, rng, { bias: false }));
    this.down = this.registerModule('down', new Linear(c.intermediate_size, c.hidden_size, rng, { bias: false }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.down.forward(tf.mul(this.#act(this.gate.forward(x)), this.up.forward(x)));
  }
}

class DecoderBlock extends Module {
  readonly norm1: RMSNorm;
  readonly qkv: Linear;
  readonly out: Linear;
  readonly norm2: RMSNorm;
  readonly mlp: GatedMlp;
  constructor(
    private readonly c: TinyLlamaConfig,
    rng: Rng,
  ) {
    super();
    this.norm1 = this.registerModule('norm1', new RMSNorm(c.hidden_size));
    this.qkv = this.registerModule('qkv', new Linear(c.hidden_size, 3 * c.hidden_size, rng, { bias: false }));
    this.out = this.registerModule('out', new Linear(c.hidden_size, c.hidden_size, rng, { bias: false }));
    this.norm2 = this.registerModule('norm2', new RMSNorm(c.hidden_size));
    this.mlp = this.registerModule('mlp', new GatedMlp(c, rng));
  }
  forward(x: tf.Tensor): tf.Tensor {
    const [q, k, v] = tf
      .split(this.qkv.forward(this.norm1.forward(x)), 3, 2)
      .map((t) => splitHeads(t, this.c.num_heads)); // [B, nHead, T, headSize]
    const attended = mergeHeads(scaledDotProductAttention(q!, k!, v!, { causal: true, scale: null })); // [B, T, C]
    const h = tf.add(x, this.out.forward(attended));
    return tf.add(h, this.mlp.forward(this.norm2.forward(h)));
  }
}

class TinyLlama extends PretrainedModel {
  readonly architecture = 'TinyLlamaForCausalLM';
  readonly embed: Embedding;
  readonly layers: ModuleList<DecoderBlock>;
  readonly norm: RMSNorm;
  readonly head: Linear;
  constructor(
    readonly config: TinyLlamaConfig,
    rng: Rng,
  ) {
    super(rng);
    this.embed = this.registerModule('embed', new Embedding(config.vocab_size, config.hidden_size, rng));
    this.layers = this.registerModule(
      'layers',
      new ModuleList(Array.from({ length: config.num_layers }, () => new DecoderBlock(config, rng))),
    );
    this.norm = this.registerModule('norm', new RMSNorm(config.hidden_size));
    this.head = this.registerModule('head', new Linear(config.hidden_size, config.vocab_size, rng, { bias: false }));
  }
  forward(inputs: ModelInputs): ModelOutput {
    let x = this.embed.forward(inputs.inputIds); // [B, T, C]
    for (const layer of this.layers) x = layer.forward(x);
    const logits = this.head.forward(this.norm.forward(x)); // [B, T, V]
    if (!inputs.labels) return { logits };
    const [B, T, V] = logits.shape as [number, number, number];
    return {
      logits,
      loss: lmLoss(tf.slice(logits, [0, 0, 0], [B, T - 1, V]), tf.slice(inputs.labels, [0, 1], [B, T - 1])),
    };
  }
}

registry.model.register('tiny-llama', (o: TinyLlamaConfig, rng: Rng) => new TinyLlama(o, rng), {
  description: 'test: RMSNorm, bias-free, gated-GELU decoder composed from @tessera/transformer blocks',
  options: z.object({
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    num_layers: z.number().int().positive(),
    num_heads: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
  }),
});

// ---- Training from a config, the same way for every registered model ------------------

const runSchema = z.object({
  seed: z.number().int(),
  model: z.looseObject({ name: z.string() }),
  training: z.object({ steps: z.number().int().positive(), learningRate: z.number().positive() }).strict(),
  data: z.object({ batch: z.number().int().positive(), length: z.number().int().positive() }).strict(),
});

function batchFor(model: PretrainedModel, rng: Rng, B: number, T: number): ModelInputs {
  const vocab = (model.config.vocab_size as number) ?? 50;
  const ids = Array.from({ length: B }, () => Array.from({ length: T }, () => 2 + rng.int(vocab - 2)));
  const inputIds = tf.tensor2d(ids, [B, T], 'int32');
  if (model.architecture === 'BertForPreTraining') {
    const labels = ids.map((row) => row.map((t, i) => (i % 3 === 1 ? t : -100)));
    const masked = ids.map((row) => row.map((t, i) => (i % 3 === 1 ? 1 : t)));
    return {
      inputIds: tf.tensor2d(masked, [B, T], 'int32'),
      labels: tf.tensor2d(labels, [B, T], 'int32'),
      nextSentenceLabel: tf.tensor1d(
        Array.from({ length: B }, (_, b) => b % 2),
        'int32',
      ),
      attentionMask: tf.onesLike(inputIds),
    };
  }
  if (model.architecture === 'T5ForConditionalGeneration') {
    return {
      inputIds,
      labels: tf.tensor2d(
        ids.map((r) => [...r].reverse()),
        [B, T],
        'int32',
      ),
    };
  }
  return { inputIds, labels: inputIds };
}

function trainFromConfig(document: unknown): number[] {
  const config = resolveConfig(document, { schema: runSchema });
  const rng = new SeededRng(config.seed);
  const { name, ...options } = config.model;
  const model = registry.model.create(name, options, rng.fork('init')) as PretrainedModel;
  const batch = batchFor(model, rng.fork('data'), config.data.batch, config.data.length);
  const params = new Map(model.namedParameters());
  const moments = new Map([...params].map(([n, p]) => [n, { m: tf.zerosLike(p.value), v: tf.zerosLike(p.value) }]));
  const losses: number[] = [];
  const before = tf.memory().numTensors;
  for (let step = 1; step <= config.training.steps; step++) {
    losses.push(
      trainStep(
        model,
        () => model.forward(batch).loss!,
        (grads) => {
          for (const [n, g] of grads) {
            const s = moments.get(n)!;
            const next = adamwUpdate(params.get(n)!.value, g, s.m, s.v, {
              lr: config.training.learningRate,
              step,
              weightDecay: 0,
            });
            params.get(n)!.assign(next.param);
            tf.dispose([s.m, s.v]);
            s.m = tf.keep(next.m);
            s.v = tf.keep(next.v);
          }
        },
      ),
    );
    expect(tf.memory().numTensors, `live tensors at step ${step}`).toBe(before);
  }
  tf.dispose([
    ...[...moments.values()].flatMap((s) => [s.m, s.v]),
    ...Object.values(batch).filter((t): t is tf.Tensor => !!t),
  ]);
  model.dispose();
  return losses;
}

const tinyGpt = {
  name: 'gpt',
  vocab_size: 50,
  n_positions: 16,
  n_embd: 32,
  n_layer: 2,
  n_head: 4,
  resid_pdrop: 0.1,
  embd_pdrop: 0.1,
  attn_pdrop: 0.1,
};
const tinyBert = {
  name: 'bert',
  head: 'pretraining',
  vocab_size: 50,
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 48,
  max_position_embeddings: 16,
};
const tinyT5 = {
  name: 't5',
  vocab_size: 50,
  d_model: 32,
  d_kv: 8,
  d_ff: 48,
  num_layers: 2,
  num_heads: 4,
  feed_forward_proj: 'gated-gelu',
  tie_word_embeddings: false,
};
const tinyLlama = {
  name: 'tiny-llama',
  vocab_size: 50,
  hidden_size: 32,
  num_layers: 2,
  num_heads: 4,
  intermediate_size: 48,
};

describe('every family trains from a config (cpu), loss falling, no leaks', () => {
  for (const model of [tinyGpt, tinyBert, tinyT5, tinyLlama]) {
    it(`${model.name}`, () => {
      const losses = trainFromConfig({
        seed: 3,
        model,
        training: { steps: 12, learningRate: 3e-3 },
        data: { batch: 4, length: 8 },
      });
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! * 0.8);
    });
  }

  it('the same seed gives the same losses (dropout included)', () => {
    const doc = { seed: 9, model: tinyGpt, training: { steps: 3, learningRate: 1e-3 }, data: { batch: 2, length: 8 } };
    expect(trainFromConfig(doc)).toEqual(trainFromConfig(doc));
  });

  it('the custom model is listed next to the built-in families', () => {
    expect(registry.model.list()).toEqual(expect.arrayContaining(['bert', 'gpt', 't5', 'tiny-llama']));
  });
});
