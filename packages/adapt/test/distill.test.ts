import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/optim';
import '@tessera/data';
import {
  checkCompatible,
  distil,
  distillationOptionsSchema,
  distillationTerms,
  initStudentFromTeacher,
  maskedCosineLoss,
  softTargetKl,
  teacherOf,
} from '@tessera/adapt';
import { Rng, registry, tf, valueAndGrads } from '@tessera/tensor-core';
import { listCheckpoints } from '@tessera/trainers';
import { loadPretrained, type PretrainedModel } from '@tessera/transformer';
import { run, tinyGpt, workspace } from './helpers.js';

const rows = (t: tf.Tensor) => t.arraySync() as number[][][];

/** Plain-JS reference: Σ_v p_t (log p_t − log p_s) at temperature T, mean over kept rows, × T². */
function referenceKl(s: number[][][], t: number[][][], mask: number[][], T: number): number {
  const logSoftmax = (z: number[]) => {
    const m = Math.max(...z.map((v) => v / T));
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v / T - m), 0));
    return z.map((v) => v / T - lse);
  };
  let sum = 0;
  let count = 0;
  s.forEach((batch, b) => {
    batch.forEach((row, i) => {
      if (!mask[b]![i]) return;
      const ls = logSoftmax(row);
      const lt = logSoftmax(t[b]![i]!);
      sum += lt.reduce((a, v, k) => a + Math.exp(v) * (v - ls[k]!), 0);
      count++;
    });
  });
  return (sum / count) * T * T;
}

/** Plain-JS reference of PyTorch's CosineEmbeddingLoss (target 1) over the kept positions. */
function referenceCosine(s: number[][][], t: number[][][], mask: number[][]): number {
  let sum = 0;
  let count = 0;
  s.forEach((batch, b) => {
    batch.forEach((x, i) => {
      if (!mask[b]![i]) return;
      const y = t[b]![i]!;
      const dot = x.reduce((a, v, k) => a + v * y[k]!, 0);
      const nx = x.reduce((a, v) => a + v * v, 0) + 1e-12;
      const ny = y.reduce((a, v) => a + v * v, 0) + 1e-12;
      sum += 1 - dot / Math.sqrt(nx * ny);
      count++;
    });
  });
  return sum / count;
}

function tinyBert(layers: number, extra: Record<string, unknown> = {}): PretrainedModel {
  return registry.model.create(
    'bert',
    {
      head: 'pretraining',
      vocab_size: 50,
      hidden_size: 16,
      num_hidden_layers: layers,
      num_attention_heads: 2,
      intermediate_size: 32,
      max_position_embeddings: 16,
      ...extra,
    },
    new Rng(layers * 101),
  ) as PretrainedModel;
}

/** The options with their defaults, for a teacher passed in directly (the schema checks a `teacher` directory). */
const options = (o: Record<string, unknown> = {}) => ({
  teacher: '(in memory)',
  ...distillationOptionsSchema.omit({ teacher: true }).parse(o),
});

describe('distillation loss terms', () => {
  const rng = new Rng(3);
  const draw = (shape: number[]) =>
    tf.tensor(
      Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.normal() * 2),
      shape,
    );

  it('KL × T² matches a reference computation, over the masked positions only', () => {
    const s = draw([2, 3, 5]);
    const t = draw([2, 3, 5]);
    const mask = [
      [1, 1, 0],
      [1, 0, 1],
    ];
    for (const T of [1, 2, 4]) {
      const kl = softTargetKl(s, t, T, tf.tensor(mask, undefined, 'int32'));
      expect(kl.dataSync()[0]).toBeCloseTo(referenceKl(rows(s), rows(t), mask, T), 5);
      kl.dispose();
    }
    // Identical distributions: zero; a masked-out position changes nothing.
    const same = softTargetKl(s, s, 2);
    expect(Math.abs(same.dataSync()[0]!)).toBeLessThan(1e-6);
    tf.dispose([s, t, same]);
  });

  it('the cosine loss matches CosineEmbeddingLoss on the positions the attention mask keeps', () => {
    const s = draw([2, 4, 6]);
    const t = draw([2, 4, 6]);
    const mask = [
      [1, 1, 1, 0],
      [1, 0, 0, 0],
    ];
    const cos = maskedCosineLoss(s, t, tf.tensor(mask, undefined, 'int32'));
    expect(cos.dataSync()[0]).toBeCloseTo(referenceCosine(rows(s), rows(t), mask), 5);
    const parallel = maskedCosineLoss(s, tf.mul(s, 3));
    expect(Math.abs(parallel.dataSync()[0]!)).toBeLessThan(1e-6);
    tf.dispose([s, t, cos, parallel]);
  });

  it('combines the terms with alpha_ce / alpha_task / alpha_cos (defaults 5 / 2 / 1, T 2)', () => {
    const o = options();
    expect([o.alpha_ce, o.alpha_task, o.alpha_cos, o.temperature]).toEqual([5, 2, 1, 2]);
    const s = draw([1, 3, 4]);
    const t = draw([1, 3, 4]);
    const hs = draw([1, 3, 6]);
    const ht = draw([1, 3, 6]);
    const mask = [[1, 1, 0]];
    const labels = tf.tensor([[-100, 2, -100]], undefined, 'int32');
    const attentionMask = tf.tensor(mask, undefined, 'int32');
    const task = tf.scalar(0.7);
    const terms = distillationTerms(
      o,
      { logits: s, hidden: hs, taskLoss: task },
      { logits: t, hidden: ht },
      { attentionMask, labels },
    );
    const kl = referenceKl(rows(s), rows(t), mask, 2);
    const cos = referenceCosine(rows(hs), rows(ht), mask);
    expect(terms.kl.dataSync()[0]).toBeCloseTo(kl, 5);
    expect(terms.cos.dataSync()[0]).toBeCloseTo(cos, 5);
    expect(terms.loss.dataSync()[0]).toBeCloseTo(5 * kl + 2 * 0.7 + cos, 4);
    // restrict_ce_to_mask: only the scored (labelled) position.
    const scored = distillationTerms(
      options({ kl_positions: 'labels', alpha_cos: 0 }),
      { logits: s, taskLoss: task },
      { logits: t },
      { attentionMask, labels },
    );
    expect(scored.kl.dataSync()[0]).toBeCloseTo(referenceKl(rows(s), rows(t), [[0, 1, 0]], 2), 5);
    tf.dispose([s, t, hs, ht, labels, attentionMask, task, ...Object.values(terms), ...Object.values(scored)]);
  });
});

describe('student initialised from the teacher', () => {
  it('copies teacher layers 0 and 2 into a 2-layer student (every: 2), and everything outside the layers', () => {
    const teacher = tinyBert(4);
    const student = tinyBert(2);
    const mapping = initStudentFromTeacher(student, teacher, { every: 2 });
    const t = new Map(teacher.namedParameters());
    const s = new Map(student.namedParameters());
    expect(mapping.get('bert.encoder.layer.1.attention.self.query.weight')).toBe(
      'bert.encoder.layer.2.attention.self.query.weight',
    );
    for (const [name, source] of mapping) {
      const from = t.get(source)!.value.dataSync();
      expect(Array.from(s.get(name)!.value.dataSync())).toEqual(Array.from(from));
    }
    const same = (a: string, b: string) =>
      Array.from(s.get(a)!.value.dataSync()).every((v, i) => v === t.get(b)!.value.dataSync()[i]);
    expect(same('bert.encoder.layer.0.output.dense.weight', 'bert.encoder.layer.0.output.dense.weight')).toBe(true);
    expect(same('bert.encoder.layer.1.output.dense.weight', 'bert.encoder.layer.2.output.dense.weight')).toBe(true);
    expect(same('bert.encoder.layer.1.output.dense.weight', 'bert.encoder.layer.1.output.dense.weight')).toBe(false);
    expect(same('bert.embeddings.word_embeddings.weight', 'bert.embeddings.word_embeddings.weight')).toBe(true);
    expect(mapping.size).toBe(s.size);
    // An explicit list, and a list the teacher cannot fill.
    initStudentFromTeacher(student, teacher, { every: 2, layers: [1, 3] });
    expect(same('bert.encoder.layer.0.output.dense.weight', 'bert.encoder.layer.1.output.dense.weight')).toBe(true);
    expect(() => initStudentFromTeacher(student, teacher, { every: 4 })).toThrow(
      /teacher layers \[0, 4\][\s\S]*teacher has 4/,
    );
    expect(() => initStudentFromTeacher(student, teacher, { every: 1, layers: [0] })).toThrow(/one per student layer/);
    teacher.dispose();
    student.dispose();
  });

  it('names every mismatch: hidden size, vocabulary, head', () => {
    const teacher = tinyBert(4);
    const student = tinyBert(2, { hidden_size: 8, vocab_size: 60 });
    expect(() => checkCompatible(student, teacher, 'runs/t')).toThrow(
      /hidden size: the student has 8, the teacher 16[\s\S]*vocabulary: the student has 60 tokens, the teacher 50[\s\S]*runs\/t\/tokenizer\.json/,
    );
    const classifier = tinyBert(2, { head: 'sequence-classification' });
    expect(() => checkCompatible(classifier, teacher, 'runs/t')).toThrow(
      /BertForSequenceClassification.*BertForPreTraining/,
    );
    tf.dispose([]);
    teacher.dispose();
    student.dispose();
    classifier.dispose();
  });
});

describe('distilled training', () => {
  it('keeps the live tensor count flat over steps and frees the teacher with the student', () => {
    const before = tf.memory().numTensors;
    const teacher = tinyBert(4);
    const teacherWeights = teacher.namedParameters().map(([, p]) => Array.from(p.value.dataSync()));
    for (const p of teacher.parameters()) p.trainable = false;
    teacher.eval();
    const student = tinyBert(2);
    initStudentFromTeacher(student, teacher, { every: 2 });
    distil(student, teacher, options());
    expect(teacherOf(student)).toBe(teacher);
    student.train();
    const rng = new Rng(9);
    const counts: number[] = [];
    for (let step = 0; step < 4; step++) {
      const ids = Array.from({ length: 2 }, () => Array.from({ length: 8 }, () => 5 + rng.int(40)));
      const inputs = {
        inputIds: tf.tensor(ids, undefined, 'int32'),
        attentionMask: tf.tensor(
          [
            [1, 1, 1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 0, 0, 0],
          ],
          undefined,
          'int32',
        ),
        labels: tf.tensor(
          ids.map((r) => r.map((v, i) => (i % 3 === 1 ? v : -100))),
          undefined,
          'int32',
        ),
        nextSentenceLabel: tf.tensor([0, 1], undefined, 'int32'),
      };
      const { loss, grads } = valueAndGrads(student, () => student.forward(inputs).loss!);
      // Gradients for the student's weights only.
      expect(grads.size).toBe(student.namedParameters().length);
      tf.dispose([loss, ...grads.values(), ...Object.values(inputs)]);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    // The teacher never moved; eval mode is the student's own forward (its task loss).
    const after = teacher.namedParameters().map(([, p]) => Array.from(p.value.dataSync()));
    expect(after).toEqual(teacherWeights);
    student.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('trains a 2-layer student from a 4-layer teacher from a run config; checkpoints are plain HF students', async () => {
    const dir = workspace();
    const teacherRun = tinyGpt(dir, 'teacher', { max_steps: 6, save_steps: 6 });
    (teacherRun.model as Record<string, unknown>).n_layer = 4;
    await run(teacherRun, dir);
    const teacher = join(dir, 'teacher');
    const tokenizer = join(listCheckpoints(teacher).at(-1)!.path, 'tokenizer.json');
    const student = (output: string, steps: number, adapter: Record<string, unknown> = {}) => ({
      ...tinyGpt(dir, output, { max_steps: steps, save_steps: 6 }),
      tokenizer: { path: tokenizer },
      adapter: { name: 'distillation', teacher, ...adapter },
    });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // A student with nothing of the teacher's yet learns from it: the distillation loss falls.
    const fresh = await run(student('fresh', 12, { init_from_teacher: false }), dir);
    expect(mean(fresh.losses.slice(-3))).toBeLessThan(0.8 * mean(fresh.losses.slice(0, 3)));
    // Started from teacher layers 0 and 2 it begins near the teacher (the loss is mostly 2 × its task loss).
    const full = await run(student('student', 12), dir);
    expect(full.losses).toHaveLength(12);
    expect(full.losses[0]!).toBeLessThan(fresh.losses[0]!);
    const checkpoint = listCheckpoints(join(dir, 'student')).at(-1)!.path;
    expect(existsSync(join(checkpoint, 'model.safetensors'))).toBe(true);
    expect(JSON.parse(readFileSync(join(checkpoint, 'distillation.json'), 'utf8'))).toMatchObject({
      teacher,
      alpha_ce: 5,
      temperature: 2,
    });
    const { model } = loadPretrained(checkpoint);
    expect(model.config.n_layer).toBe(2);
    model.dispose();
    // Resumed at step 6 it continues exactly (student rebuilt, teacher reloaded, weights from the checkpoint).
    await run(student('resumed', 6), dir);
    const rest = await run(student('resumed', 12), dir, join(dir, 'resumed'));
    expect(rest.losses).toEqual(full.losses.slice(6));
  });

  it('rejects a missing teacher with the rest of the config, and mismatched students before training', async () => {
    const dir = workspace();
    const bad = {
      ...tinyGpt(dir, 'x'),
      data: { train: { path: join(dir, 'no-such-data.txt') } },
      adapter: { name: 'distillation', teacher: join(dir, 'no-teacher'), alpha_ce: -1 },
    };
    const error = await run(bad, dir).catch((err: Error) => err);
    expect(String(error)).toMatch(/adapter\.teacher[\s\S]*does not exist/);
    expect(String(error)).toMatch(/adapter\.alpha_ce/);
    const teacherRun = tinyGpt(dir, 'teacher', { max_steps: 1, save_steps: 1 });
    await run(teacherRun, dir);
    const teacher = join(dir, 'teacher');
    const narrow = { ...tinyGpt(dir, 'y'), adapter: { name: 'distillation', teacher } };
    (narrow.model as Record<string, unknown>).n_embd = 16;
    // Caught by the config check, before the student is built.
    await expect(run(narrow, dir)).rejects.toThrow(/model\.n_embd: found 16; expected 32, the teacher's/);
  });
});
