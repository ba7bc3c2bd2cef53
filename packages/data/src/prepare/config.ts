import { availableParallelism } from 'node:os';
import { z } from '@tessera/tensor-core';

/**
 * A `tessera data prepare` pipeline: read a corpus, clean and filter each document, drop
 * exact and near duplicates across the whole corpus, and write what survives as cleaned
 * JSONL and/or token shards that `token-shards` datasets train from. Keys are snake_case,
 * as in run configs; paths are relative to the config file.
 */
const stepSpec = z.object({ name: z.string().min(1) }).passthrough();

export const prepareConfigSchema = z
  .object({
    /** Extra npm packages to load first (plugins that register more steps). */
    plugins: z.array(z.string()).default([]),
    input: z
      .object({
        /** A file, or a directory read recursively (files sorted by path). */
        path: z.string().min(1),
        format: z.enum(['text', 'jsonl', 'csv', 'tsv']).default('jsonl'),
        /** text: one document per line, or per blank-line-separated block. */
        mode: z.enum(['line', 'document']).default('line'),
        /** jsonl/csv/tsv: the field holding the text. */
        field: z.string().default('text'),
        /** In a directory, only files whose names end so. */
        extensions: z.array(z.string()).optional(),
        /** Longer documents are counted as bad input and skipped. */
        max_chars: z.number().int().positive().optional(),
      })
      .strict(),
    /** Registered text steps (registry.preprocess), applied in order to each document. */
    steps: z.array(stepSpec).default([]),
    dedup: z
      .object({
        /** Exact duplicates by SHA-1 of the text; `normalize` ignores case and spacing. */
        exact: z.union([z.literal(false), z.object({ normalize: z.boolean().default(false) }).strict()]).prefault({}),
        /** MinHash LSH near duplicates; FineWeb's parameters by default. */
        near: z
          .union([
            z.literal(false),
            z
              .object({
                bands: z.number().int().min(1).default(14),
                rows: z.number().int().min(1).default(8),
                shingle_size: z.number().int().min(1).default(5),
                seed: z.number().int().default(1),
              })
              .strict(),
          ])
          .prefault({}),
        /** Spill files per dedup pass: memory holds one (about 12 × 14 × documents / partitions bytes). */
        partitions: z.number().int().min(1).max(4096).default(64),
      })
      .strict()
      .prefault({}),
    output: z
      .object({
        dir: z.string().min(1),
        /** Write the surviving documents as JSONL ({"text": ...}), one file per input unit. */
        text: z.boolean().default(true),
        /** Tokenize the survivors into token shards (one per input unit) with this tokenizer. */
        tokens: z
          .object({
            tokenizer: z.string().min(1).describe('a tokenizer.json file'),
            /** Token dtype; "auto" picks uint16 when the vocabulary fits. */
            dtype: z.enum(['auto', 'uint16', 'uint32']).default('auto'),
            /** Written after each document: a token string such as "<|endoftext|>", an id, or null. */
            separator: z.union([z.string().min(1), z.number().int().min(0), z.null()]).default(null),
            add_special_tokens: z.boolean().default(false),
          })
          .strict()
          .optional(),
        /** Removed documents kept for inspection, per reason (removed/<reason>.jsonl). */
        removed_samples: z.number().int().min(0).default(20),
      })
      .strict(),
    /** Worker threads for reading, filtering, hashing and tokenizing. */
    workers: z.number().int().min(1).default(Math.min(availableParallelism(), 8)),
    /** Input files are cut into units of about this many MiB; a unit is the unit of resume. */
    unit_mb: z.number().positive().default(32),
  })
  .strict();

export type PrepareConfig = z.infer<typeof prepareConfigSchema>;
/** A config as written (defaults not yet applied). */
export type PrepareConfigInput = z.input<typeof prepareConfigSchema>;
