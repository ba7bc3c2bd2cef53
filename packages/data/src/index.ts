/**
 * @tessera/data — text cleaning and dedup, tokenizers (byte-level BPE, WordPiece,
 * Unigram) that read and write HF tokenizer.json, and tokenizer training.
 * Importing it registers tokenizers ("hf-json", "bpe", "wordpiece", "unigram") and
 * text steps ("text.*" under the dataset kind).
 */
export * from './tokenizers/index.js';
export * from './preprocess/steps.js';
export * from './datasets/shards.js';
export * from './datasets/text.js';
export * from './objectives/objectives.js';
import './register.js';
