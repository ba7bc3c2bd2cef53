export { TokenizerError } from './errors.js';
export { Aligned, BYTE_TO_CHAR, CHAR_TO_BYTE } from './text.js';
export { type Normalizer, createNormalizer, BertNormalizer } from './normalizers.js';
export {
  type PreTokenizer,
  createPreTokenizer,
  ByteLevelPreTokenizer,
  MetaspacePreTokenizer,
  GPT2_PATTERN,
} from './pretokenizers.js';
export { type Model, type Token, createModel, BpeModel, WordPieceModel, UnigramModel } from './models.js';
export {
  type Encoding,
  type PostProcessor,
  type Decoder,
  createPostProcessor,
  createDecoder,
  TemplateProcessing,
} from './processors.js';
export * from './tokenizer.js';
export * from './train.js';
export * from './presets.js';
export { PrecompiledCharsmap } from './precompiled.js';
export * from './regex.js';
export { TokenizerPool } from './pool.js';
