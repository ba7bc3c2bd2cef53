import { formatIssues, TesseraError, z } from '@tessera/tensor-core';

/** What quantization_config.quant_method says in an int8 checkpoint's config.json. */
export const QUANT_METHOD = 'tessera_int8_dynamic';

/**
 * Dynamic int8 options: the same block in a run config's `adapter: { name: int8-dynamic, ... }`
 * and in `quantizeDynamic(model, options)`.
 */
export const int8OptionsSchema = z
  .object({
    /**
     * Which Linear layers to quantize (LoRA's rule: a list of names or name suffixes, or a
     * regular expression the whole dotted name must match). Default: every Linear except an
     * untied output layer (lm_head).
     */
    target_modules: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).optional(),
    /** Quantize an untied lm_head too (its error lands directly on the logits). */
    include_lm_head: z.boolean().default(false),
    /** An int8 checkpoint directory (saveQuantized / `tessera quantize`) to load instead of quantizing the model's own weights. */
    checkpoint: z.string().min(1).optional(),
  })
  .strict();

export type Int8Options = z.output<typeof int8OptionsSchema>;
export type Int8OptionsInput = z.input<typeof int8OptionsSchema>;

export function parseInt8Options(raw: unknown, source = 'int8 options'): Int8Options {
  const result = int8OptionsSchema.safeParse(raw ?? {});
  if (!result.success) throw new TesseraError(`Invalid ${source}:\n${formatIssues(result.error.issues, raw ?? {})}`);
  return result.data;
}

/** config.json's quantization_config block of an int8 checkpoint. */
export interface QuantizationConfig {
  quant_method: typeof QUANT_METHOD;
  bits: 8;
  weights: 'symmetric int8, one float32 scale per output channel (<layer>.weight_scale)';
  activations: 'symmetric int8, one scale per row, computed at run time';
  /** The I8 weights are stored [out, in], whatever the layer's own layout (GPT-2's Conv1D is [in, out]). */
  weight_layout: 'out_in';
  /** The quantized Linear layers, by dotted name. */
  modules: string[];
  /** Linear layers left in float32, by dotted name. */
  modules_not_converted: string[];
  format_version: 1;
}
