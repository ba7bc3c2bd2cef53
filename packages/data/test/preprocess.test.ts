import { registry } from '@tessera/tensor-core';
import {
  CleanWhitespaceStep,
  ExactDedupStep,
  LengthFilterStep,
  NearDedupStep,
  NormalizeStep,
  StripAccentsStep,
  StripHtmlStep,
  StopwordStep,
  TextPipeline,
  type TextStep,
  lshParams,
} from '@tessera/data';
import { describe, expect, it } from 'vitest';
import { corpusLines } from './helpers.js';

describe('text steps', () => {
  it('normalises Unicode and strips accents', () => {
    expect(new NormalizeStep('NFC').apply('e\u0301')).toBe('é');
    expect(new NormalizeStep('NFKC').apply('ﬁ ½')).toBe('fi 1⁄2');
    expect(new StripAccentsStep().apply('Ångström café')).toBe('Angstrom cafe');
  });

  it('removes control characters and collapses whitespace', () => {
    const s = new CleanWhitespaceStep();
    expect(s.apply('  a\u0000b \t\u00a0 c\r\n\n\n\nd\u200b\ufffd  ')).toBe('ab c\n\nd');
    expect(s.report()).toMatchObject({ seen: 1, changed: 1, removed: 0 });
  });

  it('strips HTML, scripts and comments and decodes entities', () => {
    const html =
      '<html><head><style>p{}</style><script>x<1</script></head><body><p>Fish &amp; chips&#33;</p><!-- no --><b>bold</b> &eacute;</body></html>';
    expect(new StripHtmlStep().apply(html)?.replace(/\s+/g, ' ').trim()).toBe('Fish & chips! bold &eacute;');
  });

  it('filters by length and counts each reason', () => {
    const s = new LengthFilterStep({ minWords: 2, maxChars: 20 });
    const out = ['one', 'two words', 'this one is far too long to keep'].map((d) => s.apply(d));
    expect(out).toEqual([null, 'two words', null]);
    expect(s.report()).toEqual({
      step: 'length-filter',
      seen: 3,
      changed: 0,
      removed: 2,
      reasons: { 'too-few-words': 1, 'too-many-chars': 1 },
    });
  });

  it('removes stopwords', () => {
    expect(new StopwordStep().apply('The whale and the sea')).toBe('whale sea');
  });

  it('drops exact duplicates, optionally ignoring case and spacing', () => {
    const s = new ExactDedupStep({ normalize: true });
    expect(['a b', 'A  b', 'c'].map((d) => s.apply(d))).toEqual(['a b', null, 'c']);
    expect(s.report().reasons).toEqual({ duplicate: 1 });
  });

  it('drops near duplicates with MinHash + LSH and keeps distinct documents', () => {
    const all = corpusLines();
    // Three sentences per document; changing the last word touches one 5-word shingle (Jaccard > 0.9).
    const lines = Array.from({ length: 60 }, (_, i) => all.slice(3 * i, 3 * i + 3).join(' ')).filter(
      (d) => d.split(' ').length > 40,
    );
    const s = new NearDedupStep({ threshold: 0.7, seed: 1 });
    const edited = lines.map((l) => `${l.split(' ').slice(0, -1).join(' ')} CHANGED`);
    const kept = [...lines, ...edited].filter((d) => s.apply(d) !== null);
    expect(kept).toEqual(lines);
    expect(s.report()).toMatchObject({
      seen: 2 * lines.length,
      removed: lines.length,
      reasons: { 'near-duplicate': lines.length },
    });
    const p = lshParams(0.7, 128);
    expect(p.bands * p.rows).toBeLessThanOrEqual(128);
  });

  it('runs as a streaming pipeline and reports every step', async () => {
    const pipeline = new TextPipeline([
      new CleanWhitespaceStep(),
      new LengthFilterStep({ minChars: 3 }),
      new ExactDedupStep(),
    ]);
    async function* docs() {
      yield* ['  hello   world ', 'hello world', 'x', 'bye'];
    }
    const out: string[] = [];
    for await (const d of pipeline.run(docs())) out.push(d);
    expect(out).toEqual(['hello world', 'bye']);
    expect(pipeline.report().map((r) => [r.step, r.seen, r.removed])).toEqual([
      ['clean-whitespace', 4, 0],
      ['length-filter', 4, 1],
      ['exact-dedup', 3, 1],
    ]);
  });
});

describe('registry', () => {
  it('registers tokenizers and text steps with option schemas', () => {
    expect(registry.tokenizer.list()).toEqual(expect.arrayContaining(['bpe', 'hf-json', 'unigram', 'wordpiece']));
    const step = registry.preprocess.create('near-dedup', { threshold: 0.9 }) as TextStep;
    expect(step.name).toBe('near-dedup');
    expect(() => registry.preprocess.create('near-dedup', { threshold: 2 })).toThrow(/threshold/);
    expect(() => registry.preprocess.create('normalize', { form: 'NFX' })).toThrow(/form/);
    expect(() => registry.tokenizer.create('hf-json', {})).toThrow(/exactly one of "path" or "json"/);
  });
});
