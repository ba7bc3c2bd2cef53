import { TesseraError, tf } from '@tessera/tensor-core';
import type { PretrainedModel } from '@tessera/transformer';

export class DistillationError extends TesseraError {}

/** A parameter name split at its first numeric segment: `bert.encoder.layer` · 3 · `attention.self.query.weight`. */
const LAYERED = /^(.*?)\.(\d+)\.(.+)$/;

/** Layer lists of a model (their name prefix) and how many layers each holds. */
export function layerCounts(model: PretrainedModel): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [name] of model.namedParameters()) {
    const m = LAYERED.exec(name);
    if (m) counts.set(m[1]!, Math.max(counts.get(m[1]!) ?? 0, Number(m[2]) + 1));
  }
  return counts;
}

/** The teacher layers the student's layers start from: `layers` as given, else 0, every, 2·every, ... */
export function chosenTeacherLayers(
  studentLayers: number,
  o: { every: number; layers?: number[] | undefined },
): number[] {
  if (o.layers) {
    if (o.layers.length !== studentLayers)
      throw new DistillationError(
        `distillation layers lists ${o.layers.length} teacher layer(s) [${o.layers.join(', ')}] for a student of ${studentLayers}; list one per student layer.`,
      );
    return o.layers;
  }
  return Array.from({ length: studentLayers }, (_, j) => j * o.every);
}

/** HF's names for a config's hidden width (its attribute_map aliases hidden_size). */
export const HIDDEN_FIELDS = ['hidden_size', 'n_embd', 'd_model'];
const field = (config: Record<string, unknown>, names: string[]) =>
  names.map((n) => config[n]).find((v) => v !== undefined);

/**
 * Checks that `student` can learn from `teacher`: same head (the KL compares their logits),
 * same hidden width (the cosine compares their hidden states), same vocabulary. Every
 * problem in one error.
 */
export function checkCompatible(student: PretrainedModel, teacher: PretrainedModel, teacherDir: string): void {
  const problems: string[] = [];
  if (student.architecture !== teacher.architecture)
    problems.push(
      `the student is ${student.architecture}, the teacher ${teacher.architecture}: give the student the teacher's head (model.head), the KL compares their logits`,
    );
  const studentHidden = field(student.config, HIDDEN_FIELDS);
  const teacherHidden = field(teacher.config, HIDDEN_FIELDS);
  if (studentHidden !== teacherHidden)
    problems.push(
      `hidden size: the student has ${studentHidden}, the teacher ${teacherHidden}: set the student's to ${teacherHidden} (the cosine loss compares hidden states, and the layers are copied)`,
    );
  if (student.config.vocab_size !== teacher.config.vocab_size)
    problems.push(
      `vocabulary: the student has ${student.config.vocab_size} tokens, the teacher ${teacher.config.vocab_size}: use the teacher's tokenizer (tokenizer: { path: ${teacherDir}/tokenizer.json })`,
    );
  if (problems.length)
    throw new DistillationError(`The student cannot be distilled from ${teacherDir}:\n  ${problems.join('\n  ')}`);
}

/**
 * Initialises the student from the teacher (DistilBERT: one layer in two): student layer j
 * of each layer list is teacher layer `layers[j]`; every other parameter (embeddings,
 * norms, pooler, head) is copied by name. Shapes are checked first, all problems in one
 * error, and nothing is assigned unless all fit. Returns student name -> teacher name.
 */
export function initStudentFromTeacher(
  student: PretrainedModel,
  teacher: PretrainedModel,
  o: { every: number; layers?: number[] | undefined },
): Map<string, string> {
  const teacherParams = new Map(teacher.namedParameters());
  const teacherCounts = layerCounts(teacher);
  const chosen = new Map<string, number[]>();
  const problems: string[] = [];
  for (const [prefix, count] of layerCounts(student)) {
    const layers = chosenTeacherLayers(count, o);
    const available = teacherCounts.get(prefix);
    if (available === undefined) problems.push(`${prefix}: the teacher has no such layer list`);
    else if (layers.some((l) => l >= available))
      problems.push(
        `${prefix}: the student's ${count} layers would start from teacher layers [${layers.join(', ')}], but the teacher has ${available} (0-${available - 1}); lower every, list layers, or give the student fewer layers`,
      );
    chosen.set(prefix, layers);
  }
  const mapping = new Map<string, string>();
  for (const [name, param] of student.namedParameters()) {
    const m = LAYERED.exec(name);
    const layers = m ? chosen.get(m[1]!) : undefined;
    const source = m && layers ? `${m[1]}.${layers[Number(m[2])]}.${m[3]}` : name;
    const from = teacherParams.get(source);
    if (!from) problems.push(`${name}: the teacher has no ${source}`);
    else if (from.shape.join() !== param.shape.join())
      problems.push(`${name} [${param.shape.join(', ')}] vs the teacher's ${source} [${from.shape.join(', ')}]`);
    else mapping.set(name, source);
  }
  if (problems.length)
    throw new DistillationError(
      `The student cannot start from the teacher's layers:\n  ${problems.join('\n  ')}\n` +
        "Give the student the teacher's widths (hidden, intermediate, heads) and fewer layers, or set init_from_teacher: false.",
    );
  const own = new Map(student.namedParameters());
  for (const [name, source] of mapping) {
    // A copy, not the teacher's buffer: the student's weights must not alias the frozen teacher's.
    const copy = tf.clone(teacherParams.get(source)!.value);
    own.get(name)!.assign(copy);
    copy.dispose();
  }
  return mapping;
}
