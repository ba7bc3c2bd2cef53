/**
 * @tessera/data — text cleaning and dedup, tokenizers (byte-level BPE, WordPiece,
 * Unigram) that read and write HF tokenizer.json, and tokenizer training.
 * Importing it registers tokenizers ("hf-json", "bpe", "wordpiece", "unigram"; each
 * loads a tokenizer.json or trains one), the "text" dataset, the objectives (causal-lm,
 * mlm, span-corruption, classification, seq2seq) and the text steps (preprocess kind).
 */
export * from './tokenizers/index.js';
export * from './preprocess/steps.js';
export * from './preprocess/quality.js';
export * from './datasets/shards.js';
export * from './datasets/text.js';
export * from './prepare/config.js';
export * from './prepare/minhash.js';
export * from './prepare/dedup.js';
export type { RemovedSample, Unit, UnitReport } from './prepare/unit.js';
export * from './prepare/pipeline.js';
export * from './objectives/objectives.js';
export * from './objectives/tasks.js';
export { type DatasetContext, type TokenizerContext, textDatasetOptions } from './register.js';
import './register.js';
