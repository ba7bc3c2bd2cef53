import { readFileSync } from 'node:fs';
import { registry, z } from '@tessera/tensor-core';
import { TokenShards } from './datasets/shards.js';
import { TextDataset } from './datasets/text.js';
import {
  CleanWhitespaceStep,
  ExactDedupStep,
  LengthFilterStep,
  LowercaseStep,
  NearDedupStep,
  NormalizeStep,
  StopwordStep,
  StripAccentsStep,
  StripHtmlStep,
  type TextStep,
} from './preprocess/steps.js';
import { C4Step, FineWebStep, GopherQualityStep, GopherRepetitionStep, LanguageStep } from './preprocess/quality.js';
import { registerObjectives } from './objectives/builtin.js';
import { TokenizerError } from './tokenizers/errors.js';
import { Tokenizer } from './tokenizers/tokenizer.js';
import { trainByteLevelBpe, trainUnigram, trainWordPiece } from './tokenizers/train.js';

const PKG = '@tessera/data';

const source = z
  .object({
    path: z.string().min(1).optional().describe('a tokenizer.json file'),
    json: z.record(z.string(), z.unknown()).optional().describe('the parsed tokenizer.json object'),
  })
  .strict()
  .refine((o) => (o.path === undefined) !== (o.json === undefined), {
    message: 'give exactly one of "path" or "json"',
  });

function load(o: { path?: string | undefined; json?: Record<string, unknown> | undefined }): Tokenizer {
  if (o.json) return Tokenizer.fromJSON(o.json);
  let text: string;
  try {
    text = readFileSync(o.path!, 'utf8');
  } catch (err) {
    throw new TokenizerError(`Could not read tokenizer file ${o.path}: ${(err as Error).message}`);
  }
  return Tokenizer.fromJSON(text);
}

/** What a run hands a tokenizer factory: the training texts, read once, for tokenizers trained on them. */
export interface TokenizerContext {
  corpus?: () => readonly string[];
}

const trainShape = {
  /** Train a new tokenizer of this many tokens on the run's training split. */
  vocab_size: z.number().int().positive(),
  min_frequency: z.number().int().positive().default(2),
};

type Trainer = (corpus: readonly string[], o: Record<string, unknown>) => Promise<Tokenizer>;

/** A tokenizer kind that loads a tokenizer.json (`path` / `json`) or trains one (`vocab_size`). */
function register(
  name: string,
  description: string,
  modelType: string | undefined,
  train?: { shape: Record<string, z.ZodType>; run: Trainer },
): void {
  if (registry.tokenizer.has(name)) return;
  const options = train ? z.union([source, z.object({ ...trainShape, ...train.shape }).strict()]) : source;
  registry.tokenizer.register(
    name,
    async (o: Record<string, unknown>, context: TokenizerContext = {}) => {
      if (train && typeof o.vocab_size === 'number') {
        if (!context.corpus)
          throw new TokenizerError(`tokenizer "${name}" with vocab_size trains on a corpus, and none was given.`);
        return train.run(context.corpus(), o);
      }
      const t = load(o);
      if (modelType && t.model.type !== modelType) {
        throw new TokenizerError(
          `tokenizer "${name}" expects a ${modelType} model, but the file holds ${t.model.type}; use tokenizer "hf-json" for any model.`,
        );
      }
      return t;
    },
    { description, package: PKG, options, trainable: train !== undefined },
  );
}

register('hf-json', 'any HF tokenizer.json (BPE, WordPiece or Unigram model)', undefined);
register('bpe', 'byte-level BPE (GPT-2 style): a tokenizer.json, or trained with vocab_size', 'BPE', {
  shape: {},
  run: (corpus, o) =>
    trainByteLevelBpe(corpus, { vocabSize: o.vocab_size as number, minFrequency: o.min_frequency as number }),
});
register('wordpiece', 'WordPiece (BERT style): a tokenizer.json, or trained with vocab_size', 'WordPiece', {
  shape: { lowercase: z.boolean().default(true) },
  run: (corpus, o) =>
    trainWordPiece(corpus, {
      vocabSize: o.vocab_size as number,
      minFrequency: o.min_frequency as number,
      lowercase: o.lowercase as boolean,
    }),
});
register('unigram', 'Unigram (SentencePiece/T5 style): a tokenizer.json, or trained with vocab_size', 'Unigram', {
  shape: { extra_ids: z.number().int().min(0).default(100) },
  run: (corpus, o) =>
    trainUnigram(corpus, {
      vocabSize: o.vocab_size as number,
      minFrequency: o.min_frequency as number,
      extraIds: o.extra_ids as number,
    }),
});

/** Text-cleaning steps: `registry.preprocess.create(name, options)` gives a TextStep. */
function step<S extends z.ZodType>(
  name: string,
  description: string,
  options: S,
  make: (o: z.infer<S>) => TextStep,
  meta: Record<string, unknown> = {},
): void {
  if (registry.preprocess.has(name)) return;
  registry.preprocess.register(name, make, { description, package: PKG, options, ...meta });
}

const none = z.object({}).strict();
step(
  'normalize',
  'Unicode normalisation',
  z.object({ form: z.enum(['NFC', 'NFD', 'NFKC', 'NFKD']).default('NFC') }).strict(),
  (o) => new NormalizeStep(o.form),
);
step('lowercase', 'lowercase', none, () => new LowercaseStep());
step('strip-accents', 'remove combining accents', none, () => new StripAccentsStep());
step(
  'clean-whitespace',
  'drop control characters, collapse whitespace',
  z
    .object({
      collapseSpaces: z.boolean().optional(),
      maxNewlines: z.number().int().min(0).optional(),
      trim: z.boolean().optional(),
    })
    .strict(),
  (o) => new CleanWhitespaceStep(o),
);
step('strip-html', 'remove tags, scripts, comments; decode entities', none, () => new StripHtmlStep());
step(
  'length-filter',
  'drop documents outside character/word bounds',
  z
    .object({
      minChars: z.number().int().min(0).optional(),
      maxChars: z.number().int().min(0).optional(),
      minWords: z.number().int().min(0).optional(),
      maxWords: z.number().int().min(0).optional(),
    })
    .strict(),
  (o) => new LengthFilterStep(o),
);
step(
  'stopwords',
  'remove stopwords (keyword/retrieval uses)',
  z.object({ words: z.array(z.string()).optional() }).strict(),
  (o) => new StopwordStep(o.words),
);
step(
  'exact-dedup',
  'drop exact duplicates (SHA-256)',
  z.object({ normalize: z.boolean().optional() }).strict(),
  (o) => new ExactDedupStep(o),
  // It remembers every document it saw, in one process: `tessera data prepare` dedups the corpus itself.
  { corpusWide: true },
);
step(
  'near-dedup',
  'drop near duplicates (MinHash + LSH)',
  z
    .object({
      threshold: z.number().gt(0).max(1).optional(),
      numPerm: z.number().int().min(2).max(1024).optional(),
      shingleSize: z.number().int().min(1).optional(),
      shingleUnit: z.enum(['word', 'char']).optional(),
      seed: z.number().int().optional(),
    })
    .strict(),
  (o) => new NearDedupStep(o),
  { corpusWide: true },
);

const fraction = z.number().min(0).max(1);
const nGramLimits = z.array(z.tuple([z.number().int().min(1), fraction]));
step(
  'gopher-quality',
  "Gopher's quality rules (word count and length, symbols, bullets, stop words); Rae et al. 2021",
  z
    .object({
      min_doc_words: z.number().int().min(0).optional(),
      max_doc_words: z.number().int().min(0).optional(),
      min_avg_word_length: z.number().min(0).optional(),
      max_avg_word_length: z.number().min(0).optional(),
      max_symbol_word_ratio: z.number().min(0).optional(),
      max_bullet_lines_ratio: fraction.optional(),
      max_ellipsis_lines_ratio: fraction.optional(),
      max_non_alpha_words_ratio: fraction.optional(),
      min_stop_words: z.number().int().min(0).optional(),
      stop_words: z.array(z.string()).optional(),
    })
    .strict(),
  (o) => new GopherQualityStep(o),
);
step(
  'gopher-repetition',
  "Gopher's repetition rules (duplicated lines, paragraphs, n-grams); Rae et al. 2021",
  z
    .object({
      dup_line_frac: fraction.optional(),
      dup_para_frac: fraction.optional(),
      dup_line_char_frac: fraction.optional(),
      dup_para_char_frac: fraction.optional(),
      top_n_grams: nGramLimits.optional(),
      dup_n_grams: nGramLimits.optional(),
    })
    .strict(),
  (o) => new GopherRepetitionStep(o as ConstructorParameters<typeof GopherRepetitionStep>[0]),
);
step(
  'c4',
  "C4's line and page rules (terminal punctuation, short lines, code, placeholders, policy boilerplate)",
  z
    .object({
      remove_citations: z.boolean().optional(),
      filter_no_terminal_punct: z.boolean().optional(),
      min_num_sentences: z.number().int().min(-1).optional(),
      min_words_per_line: z.number().int().min(-1).optional(),
      max_word_length: z.number().int().min(-1).optional(),
      filter_lorem_ipsum: z.boolean().optional(),
      filter_javascript: z.boolean().optional(),
      filter_curly_bracket: z.boolean().optional(),
      filter_policy: z.boolean().optional(),
    })
    .strict(),
  (o) => new C4Step(o),
);
step(
  'fineweb',
  "FineWeb's extra rules (line punctuation, short lines, duplicated line characters, list-like pages)",
  z
    .object({
      line_punct_thr: fraction.optional(),
      line_punct_exclude_zero: z.boolean().optional(),
      short_line_thr: fraction.optional(),
      short_line_length: z.number().int().min(0).optional(),
      char_duplicates_ratio: fraction.optional(),
      new_line_ratio: z.number().min(0).optional(),
      stop_chars: z.array(z.string().min(1)).optional(),
    })
    .strict(),
  (o) => new FineWebStep(o),
);
step(
  'language',
  'keep documents in the given languages (eld, 60 languages, ISO 639-1 codes)',
  z
    .object({
      languages: z.array(z.string().regex(/^[a-z]{2}$/, 'an ISO 639-1 code such as "en"')).min(1),
      require_reliable: z.boolean().optional(),
      max_chars: z.number().int().positive().optional(),
    })
    .strict(),
  (o) => new LanguageStep(o),
);

registerObjectives();

/** The run config's dataset block (snake_case, as the config writes it). */
export const textDatasetOptions = z
  .object({
    /** A file or directory of text, relative to the config file. */
    path: z.string().min(1),
    format: z.enum(['text', 'jsonl', 'csv', 'tsv']).default('text'),
    /** text files: one example per line, or per blank-line-separated document. */
    mode: z.enum(['line', 'document']).default('line'),
    /** jsonl/csv/tsv: the field with the text (the source, for seq2seq). */
    text_field: z.string().default('text'),
    /** classification: the field with the label. */
    label_field: z.string().default('label'),
    /** seq2seq: the field with the target text. */
    target_field: z.string().default('target'),
    /** Records longer than this many characters are bad input. */
    max_length: z.number().int().min(1).optional(),
    /** Only files whose name ends with one of these, in directory mode. */
    extensions: z.array(z.string()).optional(),
    /** Bad records: stop with an error, or skip them and count them in the report. */
    on_bad_input: z.enum(['error', 'skip']).default('error'),
  })
  .strict();

/** What a run tells a dataset factory: which record field its objective reads as the label. */
export interface DatasetContext {
  recordLabel?: 'label' | 'target';
}

registry.dataset.has('text') ||
  registry.dataset.register(
    'text',
    (o: z.output<typeof textDatasetOptions>, context: DatasetContext = {}) => {
      const labelField =
        context.recordLabel === 'target' ? o.target_field : context.recordLabel === 'label' ? o.label_field : undefined;
      return new TextDataset({
        path: o.path,
        format: o.format,
        mode: o.mode,
        field: o.text_field,
        onBadInput: o.on_bad_input,
        ...(labelField ? { labelField } : {}),
        ...(o.max_length ? { maxLength: o.max_length } : {}),
        ...(o.extensions ? { extensions: o.extensions } : {}),
      });
    },
    {
      description: 'streaming text / JSONL / CSV / TSV records from a file or directory',
      package: PKG,
      options: textDatasetOptions,
      // Which options are file paths, so a config resolves them against its own directory.
      pathOptions: ['path'],
    },
  );

registry.dataset.has('token-shards') ||
  registry.dataset.register('token-shards', (o: { path: string }) => new TokenShards(o.path), {
    description: 'pre-tokenized shards (Tessera index.json + headers, or llm.c .bin files), read on demand',
    package: PKG,
    options: z
      .object({
        /** A directory written by writeShards / prepareShards, or of llm.c .bin shards. */
        path: z.string().min(1),
      })
      .strict(),
  });
