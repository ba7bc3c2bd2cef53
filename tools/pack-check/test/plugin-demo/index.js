// tessera-plugin-demo: what a third-party package registers — a model family, an
// objective, a tokenizer and a callback — using only the published Tessera packages.
import { appendFileSync } from 'node:fs';
import { trainWordPiece } from '@tessera/data';
import { registry, tf, z } from '@tessera/tensor-core';
import { lmLoss, PretrainedModel, registerModelFamily } from '@tessera/transformer';

const PKG = 'tessera-plugin-demo';

/** A bigram language model: the logits of the next token are a row of one table. */
class BigramLM extends PretrainedModel {
  architecture = 'BigramLM';
  constructor(raw, rng) {
    super(rng);
    this.config = bigramConfig.parse(raw);
    const v = this.config.vocab_size;
    this.table = this.registerParameter('table', rng.normalTensor([v, v], this.config.init_std));
  }
  forward({ inputIds, labels }) {
    const [B, T] = inputIds.shape;
    const v = this.config.vocab_size;
    const logits = tf.gather(this.table.value, inputIds); // [B, T, V]
    if (!labels) return { logits };
    const shifted = tf.slice(logits, [0, 0, 0], [B, T - 1, v]); // [B, T-1, V]
    return { logits, loss: lmLoss(shifted, tf.slice(labels, [0, 1], [B, T - 1])) };
  }
}

const bigramConfig = z.looseObject({
  model_type: z.literal('bigram').default('bigram'),
  vocab_size: z.number().int().positive(),
  init_std: z.number().positive().default(0.02),
});

registerModelFamily(
  'bigram',
  {
    modelType: 'bigram',
    heads: { 'causal-lm': (raw, rng) => new BigramLM(raw, rng) },
    defaultHead: 'causal-lm',
    architectures: { BigramLM: 'causal-lm' },
    configSchema: bigramConfig,
    runFields: (run) => ({ vocab_size: run.vocabSize }),
    generators: {
      'causal-lm': {
        continuesPrompt: true,
        async run(model, prompts, options) {
          const out = prompts.map(() => []);
          let last = prompts.map((p) => p[p.length - 1]);
          for (let i = 0; i < options.maxNewTokens; i++) {
            const next = tf.tidy(() => tf.argMax(tf.gather(model.table.value, last), -1));
            last = Array.from(await next.data());
            next.dispose();
            for (const [b, t] of last.entries()) out[b].push(t);
          }
          return out;
        },
      },
    },
  },
  { package: PKG },
);

// Non-overlapping windows; labels are the inputs (the model shifts them, as HF does).
registry.objective.register(
  'demo-windows',
  (o) => ({
    name: 'demo-windows',
    prepare(ctx) {
      return {
        modelConfig: {},
        truncatedTokens: 0,
        examples(records) {
          const ids = records.flatMap((r) => ctx.tokenizer.encode(r.text, null, { addSpecialTokens: false }).ids);
          const out = [];
          for (let s = 0; s + ctx.blockSize <= ids.length; s += o.stride ?? ctx.blockSize)
            out.push({ ids: ids.slice(s, s + ctx.blockSize) });
          return out;
        },
        collate(examples) {
          const rows = examples.map((e) => e.ids);
          return { inputIds: rows, attentionMask: rows.map((r) => r.map(() => 1)), labels: rows };
        },
        score(predictions, batch) {
          return {
            predictions: predictions.map((r) => r.slice(0, -1)),
            labels: batch.labels.map((r) => r.slice(1)),
          };
        },
      };
    },
  }),
  { package: PKG, options: z.object({ stride: z.number().int().positive().optional() }).strict() },
);

// Trained on the corpus the run hands it, lowercased first.
registry.tokenizer.register(
  'lower-wordpiece',
  (o, ctx) =>
    trainWordPiece(
      ctx.corpus().map((t) => t.toLowerCase()),
      { vocabSize: o.vocab_size, minFrequency: 1, lowercase: true },
    ),
  { package: PKG, options: z.object({ vocab_size: z.number().int().positive() }).strict() },
);

// Appends every event it sees to a JSONL file.
registry.callback.register(
  'event-log',
  (o) => {
    const write = (event, ctx, extra = {}) =>
      appendFileSync(o.file, `${JSON.stringify({ event, step: ctx.state.step, ...extra })}\n`);
    return {
      name: 'event-log',
      onTrainBegin: (ctx) => write('train-begin', ctx),
      onStepEnd: (ctx, step) => write('step-end', ctx, { loss: step.loss }),
      onEvaluate: (ctx, metrics) => write('evaluate', ctx, { metrics }),
      onSave: (ctx) => write('save', ctx, { checkpoint: ctx.lastCheckpoint }),
      onTrainEnd: (ctx, end) => write('train-end', ctx, { sample: end.sample ?? null }),
    };
  },
  { package: PKG, options: z.object({ file: z.string().min(1) }).strict() },
);
