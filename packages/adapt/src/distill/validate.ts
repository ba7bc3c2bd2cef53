import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tokenizer } from '@tessera/data';
import type { ConfigProblem } from '@tessera/tensor-core';
import { modelFields, normalizeTokenizer, type RunCheckContext, resolveModelDir } from '@tessera/trainers';
import { familyByModelType, type ModelFamily, readHfConfig } from '@tessera/transformer';
import type { DistillationOptions } from './config.js';
import { chosenTeacherLayers, HIDDEN_FIELDS } from './student.js';

/** Fields that fix a layer's or an embedding's shape: they must match for the student to start from the teacher's weights. */
const SHAPE_FIELDS = [
  'intermediate_size',
  'n_inner',
  'd_ff',
  'd_kv',
  'num_attention_heads',
  'n_head',
  'num_heads',
  'max_position_embeddings',
  'n_positions',
  'type_vocab_size',
];
const LAYER_FIELDS = ['num_hidden_layers', 'n_layer', 'num_layers'];

type Config = Record<string, unknown>;
const isBlock = (v: unknown): v is Config => v !== null && typeof v === 'object' && !Array.isArray(v);
const firstKey = (config: Config, keys: string[]) => keys.find((k) => config[k] !== undefined);

/** The student's HF config as the run will build it: `model.from`'s config.json, or the block over the family's defaults. */
function studentConfig(
  model: Config,
  family: ModelFamily,
  facts: { vocabSize: number; blockSize: number },
  base: string,
): Config | undefined {
  const fields = modelFields(model as never);
  if (typeof model.from === 'string') {
    try {
      return { ...readHfConfig(resolveModelDir(resolve(base, model.from)).dir), ...fields };
    } catch {
      return undefined; // the model block's own check reports a bad `from`
    }
  }
  const derived = family.runFields?.(facts) ?? {};
  const parsed = family.configSchema?.safeParse({ ...derived, ...fields });
  if (parsed && !parsed.success) return undefined; // reported by the model block's schema
  return (parsed?.data as Config | undefined) ?? { ...derived, ...fields };
}

/** The vocabulary of the run's tokenizer, when it is loaded from a file (undefined when it is trained or unreadable). */
function tokenizerVocab(block: unknown, base: string): number | undefined {
  const tokenizer = normalizeTokenizer(block);
  if (!isBlock(tokenizer) || typeof tokenizer.path !== 'string') return undefined;
  try {
    return Tokenizer.fromJSON(readFileSync(resolve(base, tokenizer.path), 'utf8')).getVocabSize();
  } catch {
    return undefined;
  }
}

/**
 * The distillation block against the rest of the run, at validation (config files only, no
 * weights): the teacher's config.json is read and compared with the student the model block
 * will build (family, head, hidden size, vocabulary; with init_from_teacher the layer shapes
 * and the teacher layers the student starts from). Every problem, each at its config path.
 */
export function distillationRunProblems(o: DistillationOptions, { document, base }: RunCheckContext): ConfigProblem[] {
  let teacherDir: string;
  let teacher: Config;
  let familyName: string;
  let family: ModelFamily;
  try {
    teacherDir = resolveModelDir(o.teacher).dir;
    teacher = readHfConfig(teacherDir);
    [familyName, family] = familyByModelType(teacher.model_type);
  } catch (err) {
    return [{ path: 'adapter.teacher', found: o.teacher, expected: `a teacher model (${(err as Error).message})` }];
  }
  const model = isBlock(document.model) ? document.model : {};
  if (model.name !== familyName)
    return [
      {
        path: 'model.name',
        found: model.name,
        expected: `${familyName}, the teacher's family (${teacherDir} is model_type ${teacher.model_type}): the student learns from its logits and starts from its layers`,
      },
    ];
  const problems: ConfigProblem[] = [];
  const architecture = (teacher.architectures as string[] | undefined)?.[0];
  const teacherHead = architecture ? family.architectures[architecture] : undefined;
  const studentHead = typeof model.head === 'string' ? model.head : family.defaultHead;
  if (teacherHead && studentHead !== teacherHead)
    problems.push({
      path: 'model.head',
      found: model.head,
      expected: `${teacherHead}, the teacher's head (${architecture}): the KL compares both models' logits`,
    });

  const teacherVocab = teacher.vocab_size as number | undefined;
  const teacherTokenizer = join(teacherDir, 'tokenizer.json');
  const runVocab = tokenizerVocab(document.tokenizer, base);
  if (typeof model.from !== 'string' && isBlock(document.tokenizer) && runVocab === undefined) {
    const tokenizer = normalizeTokenizer(document.tokenizer) as Config;
    if (typeof tokenizer.path !== 'string')
      problems.push({
        path: 'tokenizer',
        found: document.tokenizer,
        expected: `the teacher's tokenizer, tokenizer: { path: ${teacherTokenizer} } (a tokenizer trained for the student numbers its tokens differently, so the two models' logits would not compare)`,
      });
  }
  if (runVocab !== undefined && teacherVocab !== undefined && runVocab !== teacherVocab)
    problems.push({
      path: 'tokenizer.path',
      found: `a tokenizer of ${runVocab} tokens`,
      expected: `the teacher's ${teacherVocab}-token vocabulary: use its tokenizer (tokenizer: { path: ${teacherTokenizer} })`,
    });

  const data = isBlock(document.data) ? document.data : {};
  const blockSize = typeof data.block_size === 'number' ? data.block_size : 128;
  const student = studentConfig(model, family, { vocabSize: runVocab ?? teacherVocab ?? 2, blockSize }, base);
  if (!student) return problems;
  const explicit = (key: string) => model[key] !== undefined || typeof model.from === 'string';
  const mismatch = (key: string, why: string) => {
    if (teacher[key] === undefined || JSON.stringify(student[key]) === JSON.stringify(teacher[key])) return;
    const derived = explicit(key)
      ? ''
      : ` (the student's ${student[key]} is derived from the run${key.includes('position') ? ': data.block_size' : ''}; set model.${key})`;
    problems.push({
      path: `model.${key}`,
      found: student[key],
      expected: `${teacher[key]}, the teacher's: ${why}${derived}`,
    });
  };
  if (runVocab === undefined && explicit('vocab_size'))
    mismatch('vocab_size', "the KL compares logits over the teacher's vocabulary");
  const hidden = firstKey(student, HIDDEN_FIELDS) ?? firstKey(teacher, HIDDEN_FIELDS);
  if (hidden && (o.alpha_cos > 0 || o.init_from_teacher))
    mismatch(hidden, 'the cosine loss compares hidden states, and the layers are copied');
  if (!o.init_from_teacher) return problems;
  for (const key of SHAPE_FIELDS) mismatch(key, "the student's layers and embeddings start as copies of the teacher's");
  const layerKey = firstKey(student, LAYER_FIELDS);
  const teacherLayers = layerKey ? (teacher[layerKey] as number | undefined) : undefined;
  if (layerKey && typeof student[layerKey] === 'number' && typeof teacherLayers === 'number') {
    const where = o.layers ? 'adapter.layers' : 'adapter.every';
    try {
      const chosen = chosenTeacherLayers(student[layerKey] as number, o);
      if (chosen.some((l) => l >= teacherLayers))
        problems.push({
          path: where,
          found: o.layers ?? o.every,
          expected: `teacher layers below ${teacherLayers} (the teacher has 0-${teacherLayers - 1}); the student's ${student[layerKey]} layers would start from [${chosen.join(', ')}]: lower every, list layers, or give the student fewer layers (model.${layerKey})`,
        });
    } catch (err) {
      problems.push({ path: where, found: o.layers, expected: (err as Error).message });
    }
  }
  return problems;
}
