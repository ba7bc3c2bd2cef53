import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from '@tessera/tensor-core';

/** A directory a model loads from: an HF directory (config.json + model.safetensors) or a run directory. */
export function teacherDirProblem(dir: string): string | undefined {
  if (!existsSync(dir)) return `${dir} does not exist`;
  if (existsSync(join(dir, 'config.json')))
    return existsSync(join(dir, 'model.safetensors')) ? undefined : `${dir} has a config.json but no model.safetensors`;
  const checkpoints = readdirSync(dir).filter((n) => /^checkpoint-\d+$/.test(n));
  if (!checkpoints.some((n) => existsSync(join(dir, n, 'config.json'))))
    return `${dir} holds no config.json and no checkpoint-N/ with one`;
  return undefined;
}

/**
 * DistilBERT's recipe (Sanh et al. 2019, HF `examples/research_projects/distillation`):
 * loss = alpha_ce · KL(teacher ‖ student at temperature T) · T² + alpha_task · the student's
 * own loss (MLM, causal LM, ...) + alpha_cos · (1 − cos) of the last hidden states.
 * The block of a run config's `adapter: { name: distillation, ... }`.
 */
export const distillationOptionsSchema = z
  .object({
    /** The teacher: an HF model directory or a run directory (its latest checkpoint); in a run config relative to the config file. */
    teacher: z
      .string()
      .min(1)
      .superRefine((dir, ctx) => {
        const problem = teacherDirProblem(dir);
        if (problem) ctx.addIssue({ code: 'custom', message: `a teacher model directory (${problem})` });
      }),
    temperature: z.number().positive().default(2),
    /** Weight of the soft-target KL (DistilBERT's alpha_ce). */
    alpha_ce: z.number().min(0).default(5),
    /** Weight of the student's own task loss (DistilBERT's alpha_mlm / alpha_clm). */
    alpha_task: z.number().min(0).default(2),
    /** Weight of the cosine loss between last hidden states (DistilBERT's alpha_cos). */
    alpha_cos: z.number().min(0).default(1),
    /**
     * Where the KL is taken: "attention" every non-padding position (DistilBERT's default),
     * "labels" only positions the task scores (its restrict_ce_to_mask: the masked tokens of MLM).
     */
    kl_positions: z.enum(['attention', 'labels']).default('attention'),
    /**
     * Student layer j starts as teacher layer j · every (DistilBERT: 0, 2, 4, ...); embeddings,
     * norms and heads are copied as they are. The student's layer count comes from its model block.
     */
    every: z.number().int().positive().default(2),
    /** Explicit teacher layers for the student's layers, in order (instead of every). */
    layers: z.array(z.number().int().min(0)).min(1).optional(),
    /** false: keep the student's own initialisation (e.g. a student already started `from` a checkpoint). */
    init_from_teacher: z.boolean().default(true),
  })
  .strict();

export type DistillationOptions = z.output<typeof distillationOptionsSchema>;
export type DistillationOptionsInput = z.input<typeof distillationOptionsSchema>;
