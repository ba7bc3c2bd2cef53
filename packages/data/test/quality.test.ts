import {
  C4Step,
  candidateProbability,
  FineWebStep,
  GopherQualityStep,
  GopherRepetitionStep,
  type LanguageStep,
  MinHasher,
  splitWords,
  TextPipeline,
} from '@tessera/data';
import { registry } from '@tessera/tensor-core';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module shared with the bench
import { mulberry32, perturb, proseDocument } from '../bench/synthetic-corpus.mjs';

const rand = mulberry32(3);
/** Ordinary prose: every quality filter must keep it unchanged. */
const prose = proseDocument(rand, 12, 12) as string;
const drop = (step: { apply(d: string): string | null; lastDrop: string | undefined }, doc: string) =>
  step.apply(doc) === null ? step.lastDrop : 'kept';
const words = (n: number, w = 'water') => Array.from({ length: n }, () => w).join(' ');

describe('quality filters keep prose', () => {
  it('passes Gopher, C4 and FineWeb unchanged, paragraph breaks included', () => {
    expect(prose).toContain('\n\n');
    const pipeline = new TextPipeline([
      new GopherQualityStep(),
      new GopherRepetitionStep(),
      new C4Step(),
      new FineWebStep(),
    ]);
    expect(pipeline.apply(prose)).toBe(prose);
    expect(pipeline.report().map((r) => [r.step, r.removed, r.changed])).toEqual([
      ['gopher-quality', 0, 0],
      ['gopher-repetition', 0, 0],
      ['c4', 0, 0],
      ['fineweb', 0, 0],
    ]);
  });

  it('splits words as the Treebank tokenizer does for English', () => {
    expect(splitWords("Don't stop—it's 3.5 e-mails... (ok)!")).toEqual([
      "Don't",
      'stop',
      '—',
      "it's",
      '3.5',
      'e-mails',
      '...',
      '(',
      'ok',
      ')',
      '!',
    ]);
  });
});

describe('gopher-quality', () => {
  const s = () => new GopherQualityStep();
  const base = `${prose}\n`;
  it('drops each rule with its reason, at the published thresholds', () => {
    expect(drop(s(), 'The cat and the dog sat with me.')).toBe('gopher_short_doc');
    expect(drop(new GopherQualityStep({ max_doc_words: 20 }), prose)).toBe('gopher_long_doc');
    expect(drop(s(), `the and to of ${words(60, 'ab')}`)).toBe('gopher_below_avg_threshold');
    expect(drop(s(), `the and to of ${words(60, 'extraordinarily')}`)).toBe('gopher_above_avg_threshold');
    // 0.1 hashes per word is the limit: a 200-word page may hold 20, not 25.
    const n = splitWords(prose).filter((w) => /\w/.test(w)).length;
    expect(drop(s(), base + '#'.repeat(Math.floor(n * 0.1)))).not.toBe('gopher_too_many_hashes');
    expect(drop(s(), base + ' #'.repeat(Math.ceil(n * 0.1) + 2))).toBe('gopher_too_many_hashes');
    // An ellipsis is a token that counts as a word too (as in datatrove): k / (n + k) > 0.1.
    expect(drop(s(), base + ' ...'.repeat(Math.ceil(n * 0.2)))).toBe('gopher_too_many_ellipsis');
    const bullets = Array.from({ length: 20 }, (_, i) => `• the item ${i} of the list and more words here`).join('\n');
    expect(drop(s(), bullets)).toBe('gopher_too_many_bullets');
    const ellipses = Array.from({ length: 10 }, (_, i) => `the story ${i} of the sea and then we went...`).join('\n');
    expect(drop(s(), ellipses)).toBe('gopher_too_many_end_ellipsis');
    expect(drop(s(), `the and ${Array.from({ length: 60 }, (_, i) => `${i}42`).join(' ')} water`)).toBe(
      'gopher_below_alpha_threshold',
    );
    expect(drop(s(), words(60, 'ocean'))).toBe('gopher_enough_stop_words');
    expect(drop(s(), prose)).toBe('kept');
  });
});

describe('gopher-repetition', () => {
  const s = () => new GopherRepetitionStep();
  it('drops repeated paragraphs, lines and n-grams with the rule that fired', () => {
    const paragraphs = prose.split('\n\n');
    expect(drop(s(), [...paragraphs, paragraphs[0], paragraphs[1], paragraphs[0]].join('\n\n'))).toBe('dup_para_frac');
    expect(drop(s(), [paragraphs.join(' '), 'x', 'y', 'z', 'x', 'y', 'x', 'y'].join('\n'))).toBe('dup_line_frac');
    expect(drop(s(), `${prose}\n\n${prose.slice(0, Math.round(prose.length * 0.3))}`)).toMatch(
      /^(dup_para_char_frac|duplicated_\d+_n_grams)$/,
    );
    expect(drop(s(), `${words(30, 'sea spray')} and then the ship sailed on`)).toBe('top_2_gram');
    // A phrase of 5+ words said four times covers more than 15% of a 150-word page.
    const phrase = 'the white whale rose from the deep';
    expect(drop(s(), `${prose.slice(0, 900)} ${phrase}. ${phrase}. ${phrase}. ${phrase}. ${phrase}.`)).toMatch(
      /^duplicated_\d+_n_grams$/,
    );
    expect(drop(s(), prose)).toBe('kept');
  });
  it('counts repeated n-gram characters without counting a word twice (datatrove find_all_duplicate)', () => {
    // "a b a b a b": with n=2, positions 0 "a b" (new), 1 "b a" (new), 2 "a b" (repeat, skip 2), 4 "a b" (repeat).
    const step = new GopherRepetitionStep({
      dup_line_frac: 1,
      dup_para_frac: 1,
      dup_line_char_frac: 1,
      dup_para_char_frac: 1,
      top_n_grams: [],
      dup_n_grams: [[2, 6 / 11 - 1e-9]],
    });
    expect(drop(step, 'a b a b a b')).toBe('duplicated_2_n_grams');
    const atLimit = new GopherRepetitionStep({ ...step.o, dup_n_grams: [[2, 6 / 11]] });
    expect(drop(atLimit, 'a b a b a b')).toBe('kept');
  });
});

describe('c4', () => {
  const lines = prose.replace(/\n\n/g, ' ').split(/(?<=\.) /);
  const page = lines.join('\n');
  it('removes lines that fail a rule, counts them, and keeps the page', () => {
    const s = new C4Step();
    const dirty = [
      lines[0],
      'Home | About | Contact',
      lines[1],
      'Enable JavaScript to see this page properly, please.',
      lines[2],
      'By using this site you agree to our terms of use and privacy policy.',
      `${lines[3]} [1] [citation needed]`,
      'Too short.',
      ...lines.slice(4),
    ].join('\n');
    const out = s.apply(dirty);
    expect(out).toBe([lines[0], lines[1], lines[2], lines[3], ...lines.slice(4)].join('\n'));
    expect(s.report().details).toEqual({
      line_no_terminal_punct: 1,
      line_javascript: 1,
      line_policy: 1,
      line_too_few_words: 1,
    });
    expect(s.report().changed).toBe(1);
  });
  it('drops pages with lorem ipsum, a curly bracket, or fewer than 5 sentences', () => {
    expect(drop(new C4Step(), `${page}\nLorem ipsum dolor sit amet, consectetur.`)).toBe('lorem_ipsum');
    expect(drop(new C4Step(), `${page}\nThe function is f(x) { return x; } and that is all.`)).toBe('curly_bracket');
    const four = [
      'The ship left the harbour at dawn',
      'The crew sang as they worked',
      'The wind rose by noon',
      'We reached the island at night',
    ]
      .map((l) => `${l}.`)
      .join('\n');
    expect(drop(new C4Step(), four)).toBe('too_few_sentences');
    expect(drop(new C4Step({ min_num_sentences: 4 }), four)).toBe('kept');
    expect(new C4Step().apply(prose)).toBe(prose);
  });
});

describe('fineweb', () => {
  const s = () => new FineWebStep();
  it('drops pages by line punctuation, short lines, duplicated line characters and list-likeness', () => {
    const noPunct = Array.from({ length: 10 }, (_, i) => `a heading line without an end mark number ${i}`).join('\n');
    expect(drop(s(), noPunct)).toBe('line_punct_ratio');
    const short = ['One short line.', 'Two short lines.', 'Three of them.', `${prose.split('\n\n')[0]}`].join('\n');
    expect(drop(s(), short)).toBe('short_line_ratio');
    const para = prose.split('\n\n');
    expect(drop(s(), [...para, para[0]].join('\n'))).toBe('char_dup_ratio');
    // Three tokens a line ("word-word word."), each line over 30 characters: 11 newlines / 36 tokens > 0.3.
    const list = Array.from({ length: 12 }, (_, i) => `Extraordinarily-magnificent whalebones${i}.`).join('\n');
    expect(drop(s(), list)).toBe('list_ratio');
    expect(drop(s(), prose)).toBe('kept');
  });
});

describe('language', () => {
  it('keeps the listed languages and names the one it dropped', async () => {
    const step = registry.preprocess.create('language', { languages: ['en'] }) as LanguageStep;
    await new TextPipeline([step]).init();
    expect(drop(step, prose)).toBe('kept');
    expect(
      drop(
        step,
        'Der alte Hafen der Stadt war am frühen Morgen ruhig, und die Fischer waren schon mit ihren Netzen hinausgefahren.',
      ),
    ).toBe('language_de');
    expect(step.report().reasons).toEqual({ language_de: 1 });
  });
  it('refuses options that are not ISO 639-1 codes', () => {
    expect(() => registry.preprocess.create('language', { languages: ['english'] })).toThrow(/ISO 639-1/);
  });
});

describe('MinHash', () => {
  const jaccard = (a: Uint32Array, b: Uint32Array) => {
    const sa = new Set(a);
    let inter = 0;
    for (const x of b) if (sa.has(x)) inter++;
    return inter / (sa.size + b.length - inter);
  };
  it('estimates Jaccard similarity: mean error under 0.05 over 40 pairs', () => {
    const h = new MinHasher();
    expect(h.numHashes).toBe(112);
    let err = 0;
    for (let i = 0; i < 40; i++) {
      const a = proseDocument(rand) as string;
      const b = perturb(a, 0.01 + 0.01 * (i % 10), rand) as string;
      const truth = jaccard(h.shingles(a), h.shingles(b));
      const sa = h.signature(a);
      const sb = h.signature(b);
      let same = 0;
      for (let p = 0; p < sa.length; p++) if (sa[p] === sb[p]) same++;
      err += Math.abs(same / sa.length - truth);
    }
    expect(err / 40).toBeLessThan(0.05);
  });
  it('ignores case, punctuation and spacing, and gives the S-curve of 14 bands x 8 rows', () => {
    const h = new MinHasher();
    expect(h.signature(prose)).toEqual(h.signature(prose.toUpperCase().replace(/ /g, '   ').replace(/[.,;]/g, '')));
    expect(candidateProbability(0.8, 14, 8)).toBeCloseTo(0.924, 3);
    expect(candidateProbability(0.5, 14, 8)).toBeCloseTo(0.053, 3);
  });
});
