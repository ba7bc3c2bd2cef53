import {
  CausalLmCollator,
  ClassificationCollator,
  Seq2SeqCollator,
  MlmCollator,
  maskTokens,
  nextSentencePairs,
  ObjectiveError,
  spanCorrupt,
  spanNoiseMask,
} from '@tessera/data';
import { Rng, registry } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';

describe('causal LM', () => {
  it("labels are the input ids (HF's convention: the model shifts them) and padding is ignored", () => {
    const b = new CausalLmCollator({ padId: 0 }).collate([
      [5, 6, 7, 8],
      [9, 10],
    ]);
    expect(b.inputIds).toEqual([
      [5, 6, 7, 8],
      [9, 10, 0, 0],
    ]);
    expect(b.labels).toEqual([
      [5, 6, 7, 8],
      [9, 10, -100, -100],
    ]);
    expect(b.attentionMask).toEqual([
      [1, 1, 1, 1],
      [1, 1, 0, 0],
    ]);
    expect(() => new CausalLmCollator().collate([[1]])).toThrow(ObjectiveError);
  });
});

describe('masked LM', () => {
  const ids = [101, ...Array.from({ length: 40 }, (_, i) => 1000 + i), 102];
  const o = { maskId: 103, vocabSize: 30522, specialIds: [101, 102, 0] };

  it('masks exactly the positions its documented draw order gives', () => {
    const got = maskTokens(ids, o, new Rng(42));
    // Replay the draws: one per token to select, then one per selected token for 80/10/10.
    const rng = new Rng(42);
    const expected = ids.slice();
    const labels = ids.map(() => -100);
    for (let i = 1; i < ids.length - 1; i++) {
      if (rng.uniform() >= 0.15) continue;
      labels[i] = ids[i]!;
      const r = rng.uniform();
      if (r < 0.8) expected[i] = 103;
      else if (r < 0.9) expected[i] = rng.int(30522);
    }
    expect(got.inputIds).toEqual(expected);
    expect(got.labels).toEqual(labels);
    expect(got.masked).toEqual([11, 13, 14, 26, 29, 30, 33, 34, 36]);
    expect(got.masked.map((i) => got.inputIds[i])).toEqual([103, 103, 103, 103, 20585, 103, 1032, 103, 103]);
  });

  it('never masks special tokens and keeps 80/10/10 over many draws', () => {
    const rng = new Rng(1);
    let sel = 0;
    let mask = 0;
    let same = 0;
    for (let k = 0; k < 400; k++) {
      const r = maskTokens(ids, o, rng);
      expect(r.labels[0]).toBe(-100);
      expect(r.labels.at(-1)).toBe(-100);
      for (const i of r.masked) {
        sel++;
        if (r.inputIds[i] === 103) mask++;
        else if (r.inputIds[i] === ids[i]) same++;
      }
    }
    const n = 400 * 40;
    expect(sel / n).toBeGreaterThan(0.13);
    expect(sel / n).toBeLessThan(0.17);
    expect(mask / sel).toBeGreaterThan(0.77);
    expect(mask / sel).toBeLessThan(0.83);
    expect(same / sel).toBeGreaterThan(0.07);
    expect(same / sel).toBeLessThan(0.13);
  });

  it('with word ids, masks whole words only', () => {
    const words = [null, ...Array.from({ length: 40 }, (_, i) => Math.floor(i / 3)), null];
    for (let s = 0; s < 50; s++) {
      const r = maskTokens(ids, o, new Rng(s), words);
      const maskedWords = new Set(r.masked.map((i) => words[i]));
      for (const w of maskedWords) {
        const members = words.flatMap((x, i) => (x === w ? [i] : []));
        expect(members.every((i) => r.masked.includes(i))).toBe(true);
      }
    }
  });

  it('collates a padded batch; the registered objective validates its options', () => {
    const c = new MlmCollator({ maskId: 103, vocabSize: 100 });
    const b = c.collate([[1, 2, 3], [4]], new Rng(0));
    expect(b.inputIds[1]).toHaveLength(3);
    expect(b.attentionMask[1]).toEqual([1, 0, 0]);
    expect(() => registry.objective.create('mlm', { probability: 2 })).toThrow(/probability/);
    expect(() => registry.objective.create('mlm', { maskId: 3 })).toThrow(/maskId/);
  });
});

describe('next-sentence pairs', () => {
  it('keeps the true next sentence half the time and labels it 0', () => {
    const docs = Array.from({ length: 20 }, (_, d) => Array.from({ length: 10 }, (_, s) => `${d}.${s}`));
    const pairs = nextSentencePairs(docs, new Rng(3));
    expect(pairs).toHaveLength(20 * 9);
    for (const p of pairs) {
      const [da, sa] = p.a.split('.').map(Number);
      const [db, sb] = p.b.split('.').map(Number);
      if (p.label === 0) expect([db, sb]).toEqual([da, sa! + 1]);
      else expect(db).not.toBe(da);
    }
    const share = pairs.filter((p) => p.label === 0).length / pairs.length;
    expect(share).toBeGreaterThan(0.4);
    expect(share).toBeLessThan(0.6);
  });
});

describe('T5 span corruption', () => {
  const sentinels = Array.from({ length: 100 }, (_, i) => 32099 - i);

  it('corrupts 15% of tokens in spans averaging 3, alternating, starting unmasked', () => {
    const mask = spanNoiseMask(100, 0.15, 3, new Rng(9));
    expect(mask).toHaveLength(100);
    expect(mask.filter(Boolean)).toHaveLength(15);
    expect(mask[0]).toBe(false);
    const spans = mask.filter((m, i) => m && !mask[i - 1]).length;
    expect(spans).toBe(5);
  });

  it('gives the exact input and target for a seed, and they rebuild the original', () => {
    const ids = Array.from({ length: 20 }, (_, i) => 100 + i);
    const r = spanCorrupt(ids, { sentinelIds: sentinels, eosId: 1 }, new Rng(5));
    // 20 tokens: round(20 * 0.15) = 3 noise tokens in round(3 / 3) = 1 span, after a non-noise run.
    expect(r.mask.flatMap((m, i) => (m ? [i] : []))).toEqual([17, 18, 19]);
    expect(r.inputIds).toEqual([...ids.slice(0, 17), 32099, 1]);
    expect(r.targets).toEqual([32099, 117, 118, 119, 1]);
    for (let s = 0; s < 30; s++) {
      const x = Array.from({ length: 57 }, (_, i) => 200 + i);
      const c = spanCorrupt(x, { sentinelIds: sentinels, eosId: 1 }, new Rng(s));
      // Put each target span back where its sentinel stands in the input.
      const spans = new Map<number, number[]>();
      let cur = -1;
      for (const t of c.targets.slice(0, -1)) {
        if (sentinels.includes(t)) spans.set((cur = t), []);
        else spans.get(cur)!.push(t);
      }
      const rebuilt = c.inputIds.slice(0, -1).flatMap((t) => spans.get(t) ?? [t]);
      expect(rebuilt).toEqual(x);
    }
  });

  it('is registered and rejects bad options', () => {
    expect(registry.objective.list()).toEqual(expect.arrayContaining(['causal-lm', 'mlm', 'span-corruption']));
    expect(() => registry.objective.create('span-corruption', { noise_density: 1.5 })).toThrow(/noise_density/);
    expect(() => spanNoiseMask(10, 1.5, 3, new Rng(0))).toThrow(/noiseDensity/);
  });
});

describe('classification and seq2seq', () => {
  it('maps labels, and names the known labels for an unknown one', () => {
    const c = new ClassificationCollator({ labels: ['neg', 'pos'] });
    const b = c.collate([
      { ids: [5, 6], label: 'pos' },
      { ids: [7], label: 'neg' },
    ]);
    expect(b.classLabels).toEqual([1, 0]);
    expect(b.inputIds).toEqual([
      [5, 6],
      [7, 0],
    ]);
    expect(() => c.collate([{ ids: [1], label: 'meh' }])).toThrow(/"meh" is not in the label map \(neg, pos\)/);
    expect(ClassificationCollator.labelsFrom(['b', 'a', 'b'])).toEqual(['a', 'b']);
  });

  it('pads sources and targets separately', () => {
    const b = new Seq2SeqCollator().collate([
      { source: [1, 2, 3], target: [4, 1] },
      { source: [5], target: [6, 7, 1] },
    ]);
    expect(b.inputIds).toEqual([
      [1, 2, 3],
      [5, 0, 0],
    ]);
    expect(b.labels).toEqual([
      [4, 1, -100],
      [6, 7, 1],
    ]);
    expect(b.labelsMask).toEqual([
      [1, 1, 0],
      [1, 1, 1],
    ]);
  });
});
