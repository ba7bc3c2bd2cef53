import {
  type Objective,
  type TextRecord,
  type Tokenizer,
  trainByteLevelBpe,
  trainUnigram,
  trainWordPiece,
} from '@tessera/data';
import { Rng, registry } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';

const TEXT = [
  'The sea was calm. The ship sailed on. The whale came up.',
  'A storm came in the night. The keeper lit the lamp. The ships stayed away.',
  'In the morning the sea was calm again. The keeper slept. The gulls cried.',
];
const records = (texts: string[], labels?: string[]): TextRecord[] =>
  texts.map((text, i) => ({ text, source: `test:${i + 1}`, ...(labels ? { label: labels[i]! } : {}) }));

function prepare(
  name: string,
  options: Record<string, unknown>,
  tokenizer: Tokenizer,
  train: TextRecord[],
  blockSize = 8,
) {
  const objective = registry.objective.create(name, options) as Objective;
  return {
    objective,
    prepared: objective.prepare({ tokenizer, blockSize, targetBlockSize: 4, rng: new Rng(1), trainRecords: train }),
  };
}

describe('objective plugins (registry.objective)', () => {
  it('causal-lm: overlapping windows of block_size, labels = inputs, scored one position ahead', async () => {
    const tokenizer = await trainByteLevelBpe(TEXT, { vocabSize: 300, minFrequency: 1 });
    const train = records(TEXT);
    const { objective, prepared } = prepare('causal-lm', {}, tokenizer, train);
    expect(objective.recordLabel).toBeUndefined();
    const examples = prepared.examples(train);
    expect(examples.length).toBeGreaterThan(3);
    for (const e of examples) expect(e.ids).toHaveLength(8);
    // Consecutive windows share one token, so the pair across each boundary is still predicted.
    expect(examples[1]!.ids[0]).toBe(examples[0]!.ids[7]);
    const batch = prepared.collate(examples.slice(0, 2), new Rng(0));
    expect(batch.labels).toEqual(batch.inputIds);
    const scored = prepared.score(
      [
        [1, 2, 3, 4, 5, 6, 7, 8],
        [1, 2, 3, 4, 5, 6, 7, 8],
      ],
      batch,
    );
    expect(scored.predictions[0]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(scored.labels[0]).toEqual(examples[0]!.ids.slice(1));
    expect(() => registry.objective.create('causal-lm', { block: 3 })).toThrow(/block/);
  });

  it('classification: label set from the data, num_labels for the model, one label per example', async () => {
    const tokenizer = await trainWordPiece(TEXT, { vocabSize: 120, minFrequency: 1, lowercase: true });
    const train = records(TEXT, ['calm', 'storm', 'calm']);
    const { objective, prepared } = prepare('classification', {}, tokenizer, train, 6);
    expect(objective.recordLabel).toBe('label');
    expect(prepared.labelNames).toEqual(['calm', 'storm']);
    expect(prepared.modelConfig).toEqual({ num_labels: 2 });
    const examples = prepared.examples(train);
    for (const e of examples) expect(e.ids.length).toBeLessThanOrEqual(6);
    const batch = prepared.collate(examples, new Rng(0));
    expect(batch.labels).toEqual([0, 1, 0]);
    expect(prepared.score([0, 0, 0], batch)).toEqual({ predictions: [[0], [0], [0]], labels: [[0], [1], [0]] });
    expect(() => prepared.examples(records(['x'], ['fog']))).toThrow(/"fog" is not in the label map/);
  });

  it('mlm with next-sentence prediction, and seq2seq with truncation counted', async () => {
    const tokenizer = await trainWordPiece(TEXT, { vocabSize: 120, minFrequency: 1, lowercase: true });
    const train = records(TEXT);
    const mlm = prepare('mlm', { probability: 0.5 }, tokenizer, train, 32).prepared;
    const examples = mlm.examples(train);
    const batch = mlm.collate(examples, new Rng(2));
    expect(batch.nextSentenceLabel).toHaveLength(examples.length);
    expect((batch.labels as number[][]).flat().some((l) => l !== -100)).toBe(true);
    expect(batch.tokenTypeIds).toBeDefined();
    const seq = prepare('seq2seq', {}, tokenizer, records(['the sea'], ['the whale came up in the night'])).prepared;
    const [pair] = seq.examples(records(['the sea'], ['the whale came up in the night']));
    expect(pair!.target).toHaveLength(4);
    expect(seq.truncatedTokens).toBeGreaterThan(0);
  });

  it('span-corruption needs sentinels and gives T5 inputs and targets', async () => {
    const unigram = await trainUnigram(TEXT, { vocabSize: 150, minFrequency: 1, extraIds: 10 });
    const train = records(TEXT);
    const { prepared } = prepare('span-corruption', { noise_density: 0.3 }, unigram, train, 12);
    const batch = prepared.collate(prepared.examples(train), new Rng(3));
    expect(batch.inputIds.length).toBeGreaterThan(0);
    expect(batch.labels.length).toBe(batch.inputIds.length);
    const bpe = await trainByteLevelBpe(TEXT, { vocabSize: 300, minFrequency: 1 });
    expect(() => prepare('span-corruption', {}, bpe, train)).toThrow(/sentinel/);
  });
});
