import { z } from '@tessera/tensor-core';

/**
 * The training arguments: one flat, documented set, named as HF's TrainingArguments
 * names them, so an HF user recognises every knob.
 */
export const trainingArgumentsSchema = z
  .object({
    /** Where checkpoints, metrics.jsonl and the loss plot go. */
    output_dir: z.string().min(1),
    /** Stop after this many optimizer updates; null = run num_train_epochs. */
    max_steps: z.number().int().positive().nullable().default(null),
    /** Passes over the training set when max_steps is null. */
    num_train_epochs: z.number().positive().default(1),
    per_device_train_batch_size: z.number().int().positive().default(8),
    per_device_eval_batch_size: z.number().int().positive().default(8),
    /** Micro-batches per update; the update equals the large-batch one. */
    gradient_accumulation_steps: z.number().int().positive().default(1),
    /** Log a line (and a metrics.jsonl record) every N updates. */
    logging_steps: z.number().int().positive().default(10),
    /** Evaluate on the validation split every N updates (null = only at the end). */
    eval_steps: z.number().int().positive().nullable().default(null),
    /** Checkpoint every N updates (null = only at the end). */
    save_steps: z.number().int().positive().nullable().default(null),
    /** Keep at most this many checkpoints (the best one is always kept); null = all. */
    save_total_limit: z.number().int().positive().nullable().default(null),
    /** Evaluation metric that decides the best checkpoint and early stopping. */
    metric_for_best_model: z.string().default('loss'),
    /** Whether a larger metric_for_best_model is better (accuracy) or worse (loss). */
    greater_is_better: z.boolean().default(false),
    /** Stop after this many evaluations without improvement; null = never. */
    early_stopping_patience: z.number().int().positive().nullable().default(null),
    /** A non-finite loss: "stop" keeps the last good checkpoint and exits; "skip" drops the batch and counts it. */
    non_finite_loss: z.enum(['stop', 'skip']).default('stop'),
    /** Batches of the validation split used per evaluation (null = all). */
    max_eval_batches: z.number().int().positive().nullable().default(null),
    /** Text sampled from the model at the end of a causal-LM run (empty = none). */
    sample_prompt: z.string().default(''),
    sample_tokens: z.number().int().min(0).default(0),
    /** Sampling temperature of that sample (0 = greedy). */
    sample_temperature: z.number().min(0).default(0.8),
    /** Keep the k most likely tokens when sampling (0 = all). */
    sample_top_k: z.number().int().min(0).default(40),
    /**
     * HF's bf16: the backend's matmuls (forward and both gradient products) round their
     * operands to bfloat16 and accumulate in fp32; weights, optimizer state and every other
     * op stay fp32. Needs a backend that declares bf16 matmul on this machine (native on a
     * CPU with AVX-512 BF16); checked with the rest of the config.
     */
    bf16: z.boolean().default(false),
  })
  .strict();

export type TrainingArguments = z.output<typeof trainingArgumentsSchema>;
