import { readFileSync } from 'node:fs';
import { registry, z } from '@tessera/tensor-core';
import { TextDataset, type TextDatasetOptions } from './datasets/text.js';
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
} from './preprocess/steps.js';
import {
  type CausalLmOptions,
  CausalLmCollator,
  ClassificationCollator,
  type ClassificationOptions,
  Seq2SeqCollator,
  type MlmOptions,
  MlmCollator,
  type SpanCorruptionOptions,
  SpanCorruptionCollator,
} from './objectives/objectives.js';
import { TokenizerError } from './tokenizers/errors.js';
import { Tokenizer } from './tokenizers/tokenizer.js';

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

function load(o: z.infer<typeof source>): Tokenizer {
  if (o.json) return Tokenizer.fromJSON(o.json);
  let text: string;
  try {
    text = readFileSync(o.path!, 'utf8');
  } catch (err) {
    throw new TokenizerError(`Could not read tokenizer file ${o.path}: ${(err as Error).message}`);
  }
  return Tokenizer.fromJSON(text);
}

function register(name: string, description: string, modelType?: string): void {
  if (registry.tokenizer.has(name)) return;
  registry.tokenizer.register(
    name,
    (o: z.infer<typeof source>) => {
      const t = load(o);
      if (modelType && t.model.type !== modelType) {
        throw new TokenizerError(
          `tokenizer "${name}" expects a ${modelType} model, but the file holds ${t.model.type}; use tokenizer "hf-json" for any model.`,
        );
      }
      return t;
    },
    { description, package: PKG, options: source },
  );
}

register('hf-json', 'any HF tokenizer.json (BPE, WordPiece or Unigram model)');
register('bpe', 'byte-level BPE (GPT-2 style) from a tokenizer.json', 'BPE');
register('wordpiece', 'WordPiece (BERT style) from a tokenizer.json', 'WordPiece');
register('unigram', 'Unigram (SentencePiece/T5 style) from a tokenizer.json', 'Unigram');

// Text steps live under the "dataset" kind (tensor-core has no preprocessing kind yet),
// named "text.*" and marked with meta.role = "text-step".
function step<S extends z.ZodType>(
  name: string,
  description: string,
  options: S,
  make: (o: z.infer<S>) => unknown,
): void {
  const full = `text.${name}`;
  if (registry.dataset.has(full)) return;
  registry.dataset.register(full, make, { description, package: PKG, options, role: 'text-step' });
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
);

const ids = z.number().int().min(0);
registry.objective.has('causal-lm') ||
  registry.objective.register('causal-lm', (o: CausalLmOptions) => new CausalLmCollator(o), {
    description: 'next-token prediction with shifted labels',
    package: PKG,
    options: z.object({ padId: ids.optional(), ignoreIndex: z.number().int().optional() }).strict(),
  });
registry.objective.has('mlm') ||
  registry.objective.register('mlm', (o: MlmOptions) => new MlmCollator(o), {
    description: 'BERT masked LM (15%, 80/10/10, optional whole-word masking)',
    package: PKG,
    options: z
      .object({
        maskId: ids,
        vocabSize: z.number().int().min(1),
        specialIds: z.array(ids).optional(),
        probability: z.number().min(0).max(1).optional(),
        maskFraction: z.number().min(0).max(1).optional(),
        randomFraction: z.number().min(0).max(1).optional(),
        padId: ids.optional(),
        ignoreIndex: z.number().int().optional(),
      })
      .strict(),
  });
registry.objective.has('span-corruption') ||
  registry.objective.register('span-corruption', (o: SpanCorruptionOptions) => new SpanCorruptionCollator(o), {
    description: 'T5 span corruption (noise density 0.15, mean span 3, sentinels)',
    package: PKG,
    options: z
      .object({
        sentinelIds: z.array(ids).min(1),
        eosId: ids,
        noiseDensity: z.number().gt(0).lt(1).optional(),
        meanSpanLength: z.number().min(1).optional(),
        padId: ids.optional(),
        ignoreIndex: z.number().int().optional(),
      })
      .strict(),
  });

registry.dataset.has('text-files') ||
  registry.dataset.register('text-files', (o: TextDatasetOptions) => new TextDataset(o), {
    description: 'streaming text / JSONL / CSV / TSV records from a file or directory',
    package: PKG,
    options: z
      .object({
        path: z.string().min(1),
        format: z.enum(['text', 'jsonl', 'csv', 'tsv']).optional(),
        mode: z.enum(['line', 'document']).optional(),
        field: z.string().min(1).optional(),
        labelField: z.string().min(1).optional(),
        maxLength: z.number().int().min(1).optional(),
        onBadInput: z.enum(['error', 'skip']).optional(),
        extensions: z.array(z.string()).optional(),
      })
      .strict(),
  });
registry.objective.has('classification') ||
  registry.objective.register('classification', (o: ClassificationOptions) => new ClassificationCollator(o), {
    description: 'sequence classification with a label map',
    package: PKG,
    options: z.object({ labels: z.array(z.string().min(1)).min(1), padId: ids.optional() }).strict(),
  });
registry.objective.has('seq2seq') ||
  registry.objective.register('seq2seq', (o: { padId?: number; ignoreIndex?: number }) => new Seq2SeqCollator(o), {
    description: 'source -> target pairs',
    package: PKG,
    options: z.object({ padId: ids.optional(), ignoreIndex: z.number().int().optional() }).strict(),
  });
