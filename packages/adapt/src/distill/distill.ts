import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Module, TesseraError, tf } from '@tessera/tensor-core';
import { type AdapterContext, type ModelAdapter, resolveModelDir } from '@tessera/trainers';
import {
  headOf,
  loadPretrained,
  loadSafetensors,
  type ModelInputs,
  type ModelOutput,
  modelFamily,
  type PretrainedModel,
  savePretrained,
} from '@tessera/transformer';
import type { DistillationOptions } from './config.js';
import { maskedCosineLoss, softTargetKl } from './losses.js';
import { checkCompatible, DistillationError, initStudentFromTeacher } from './student.js';

/** The teacher of a distilled run, loaded frozen: eval mode (no dropout), no trainable parameter. */
export function loadTeacher(dir: string): PretrainedModel {
  const { model } = loadPretrained(resolveModelDir(dir).dir);
  model.eval();
  for (const p of model.parameters()) p.trainable = false;
  return model;
}

type Forward = (...args: unknown[]) => unknown;

/** The model's trunk (the child under its family's trunk prefix: `bert`, `transformer`), whose output is the last hidden state. */
function trunkOf(model: PretrainedModel): Module | undefined {
  let prefix: string | undefined;
  try {
    prefix = modelFamily(headOf(model).family).trunkPrefix?.replace(/\.$/, '');
  } catch {
    return undefined;
  }
  return prefix ? model.children().find(([name]) => name === prefix)?.[1] : undefined;
}

/**
 * Runs `forward` and catches the last hidden state on the way: what the trunk returns (a
 * [B, T, H] tensor, or its `hidden` field). The trunk's forward is wrapped for this one call.
 */
function withLastHidden(
  model: PretrainedModel,
  forward: () => ModelOutput,
): { output: ModelOutput; hidden: tf.Tensor | undefined } {
  const trunk = trunkOf(model) as (Module & { forward: Forward }) | undefined;
  if (!trunk) return { output: forward(), hidden: undefined };
  const own = Object.getOwnPropertyDescriptor(trunk, 'forward');
  const original = trunk.forward;
  let hidden: tf.Tensor | undefined;
  trunk.forward = (...args: unknown[]) => {
    const result = original.apply(trunk, args);
    hidden = result instanceof tf.Tensor ? result : (result as { hidden?: tf.Tensor } | undefined)?.hidden;
    return result;
  };
  try {
    const output = forward();
    return { output, hidden };
  } finally {
    if (own) Object.defineProperty(trunk, 'forward', own);
    else delete (trunk as Partial<{ forward: Forward }>).forward;
  }
}

export interface DistillationTerms {
  /** alpha_ce · kl + alpha_task · task + alpha_cos · cos */
  loss: tf.Scalar;
  /** Soft-target KL at the temperature, × T². */
  kl: tf.Scalar;
  task: tf.Scalar;
  /** Mean 1 − cos of the last hidden states under the attention mask (0 when alpha_cos is 0). */
  cos: tf.Scalar;
}

/** The three terms of DistilBERT's loss and their weighted sum, from both models' outputs. */
export function distillationTerms(
  o: Pick<DistillationOptions, 'temperature' | 'alpha_ce' | 'alpha_task' | 'alpha_cos' | 'kl_positions'>,
  student: { logits: tf.Tensor; hidden?: tf.Tensor | undefined; taskLoss: tf.Scalar },
  teacher: { logits: tf.Tensor; hidden?: tf.Tensor | undefined },
  inputs: Pick<ModelInputs, 'attentionMask' | 'labels'>,
): DistillationTerms {
  return tf.tidy(() => {
    // Per-token logits [B, T, V] are weighted per position; per-example logits [B, C] all count.
    let rowWeights: tf.Tensor | undefined;
    if (student.logits.rank === 3) {
      if (o.kl_positions === 'labels' && inputs.labels?.rank === 2) rowWeights = tf.notEqual(inputs.labels, -100);
      else rowWeights = inputs.attentionMask;
    }
    const kl = softTargetKl(student.logits, teacher.logits, o.temperature, rowWeights);
    let cos: tf.Scalar = tf.scalar(0);
    if (o.alpha_cos > 0) {
      if (!student.hidden || !teacher.hidden)
        throw new DistillationError(
          "alpha_cos > 0 needs both models' last hidden states, and this model family exposes no trunk (ModelFamily.trunkPrefix); set alpha_cos: 0.",
        );
      cos = maskedCosineLoss(student.hidden, teacher.hidden, inputs.attentionMask);
    }
    const loss = tf.addN([tf.mul(kl, o.alpha_ce), tf.mul(student.taskLoss, o.alpha_task), tf.mul(cos, o.alpha_cos)]);
    return { loss: loss as tf.Scalar, kl, task: tf.clone(student.taskLoss), cos };
  });
}

const DISTILLED = Symbol('tessera.distillation');
interface Distilled {
  teacher: PretrainedModel;
  restore(): void;
}

/** The teacher a distilled model learns from, or undefined. */
export function teacherOf(model: PretrainedModel): PretrainedModel | undefined {
  return (model as unknown as { [DISTILLED]?: Distilled })[DISTILLED]?.teacher;
}

/**
 * Turns `student` into a distilled one in place: its forward, in training mode with labels,
 * also runs the frozen teacher on the same inputs (labels left out) and returns DistilBERT's
 * loss; in eval mode (or without labels) it is the student's own forward, so evaluation
 * reports the task's metrics. The teacher's tensors are freed within each call; the teacher
 * itself with the student (model.dispose()).
 */
export function distil(student: PretrainedModel, teacher: PretrainedModel, o: DistillationOptions): void {
  if (teacherOf(student)) throw new DistillationError('This model is already being distilled.');
  if (o.alpha_cos > 0 && (!trunkOf(student) || !trunkOf(teacher)))
    throw new DistillationError(
      `${student.architecture} exposes no trunk for its last hidden states (ModelFamily.trunkPrefix); set alpha_cos: 0.`,
    );
  const forward = student.forward;
  const target = student as unknown as {
    forward: PretrainedModel['forward'];
    dispose: () => void;
    [DISTILLED]?: Distilled;
  };
  target.forward = (inputs: ModelInputs): ModelOutput => {
    if (!student.training || !inputs.labels) return forward.call(student, inputs);
    const own = withLastHidden(student, () => forward.call(student, inputs));
    const taskLoss = own.output.loss;
    if (!taskLoss) throw new TesseraError(`${student.architecture} returned no loss for the labels of this objective.`);
    // The teacher's outputs live only inside this tidy: no gradient reaches its frozen weights.
    const loss = tf.tidy(() => {
      const taught = withLastHidden(teacher, () =>
        teacher.forward({ ...inputs, labels: undefined, nextSentenceLabel: undefined }),
      );
      const terms = distillationTerms(
        o,
        { logits: own.output.logits, hidden: own.hidden, taskLoss },
        { logits: taught.output.logits, hidden: taught.hidden },
        inputs,
      );
      return terms.loss;
    });
    return { ...own.output, loss };
  };
  target.dispose = () => {
    teacher.dispose();
    target[DISTILLED]!.restore();
    student.dispose();
  };
  target[DISTILLED] = {
    teacher,
    restore: () => {
      delete (target as Partial<typeof target>).forward;
      delete (target as Partial<typeof target>).dispose;
      delete target[DISTILLED];
    },
  };
}

/**
 * Distillation as the trainer drives it (`adapter: { name: distillation, teacher, ... }`):
 * the adapter seam is the one that reaches the model before the optimizer is built, so the
 * student is initialised from the teacher's layers and its loss becomes DistilBERT's, with
 * no change to the trainer. Every student weight trains; checkpoints hold the full student
 * (an HF directory that loads, evaluates and generates without the teacher).
 */
export class DistillationAdapter implements ModelAdapter {
  readonly name = 'distillation';

  constructor(
    readonly options: DistillationOptions,
    readonly context: AdapterContext,
  ) {}

  apply(model: PretrainedModel): void {
    const teacher = loadTeacher(this.options.teacher);
    try {
      checkCompatible(model, teacher, this.options.teacher);
      if (this.options.init_from_teacher) initStudentFromTeacher(model, teacher, this.options);
      distil(model, teacher, this.options);
    } catch (err) {
      teacher.dispose();
      throw err;
    }
  }

  async save(model: PretrainedModel, dir: string): Promise<void> {
    await savePretrained(model, dir);
    const { teacher, ...weights } = this.options;
    writeFileSync(join(dir, 'distillation.json'), `${JSON.stringify({ teacher, ...weights }, null, 2)}\n`);
  }

  load(model: PretrainedModel, dir: string): void {
    const { tensors } = loadSafetensors(join(dir, 'model.safetensors'));
    try {
      model.loadStateDict(tensors, { strict: true });
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  isSavedIn(dir: string): boolean {
    return existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'model.safetensors'));
  }
}
