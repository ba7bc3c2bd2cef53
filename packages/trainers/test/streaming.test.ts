import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/transformer';
import '@tessera/optim';
import '@tessera/data';
import { prepareShards, Tokenizer, trainByteLevelBpe, writeShards } from '@tessera/data';
import { tf } from '@tessera/tensor-core';
import { run, TEXT, tinyGptConfig, workspace } from './helpers.js';

/** The tiny corpus tokenized into shards (small shard files, so windows straddle them), plus its tokenizer. */
async function shardWorkspace(): Promise<{ dir: string; doc: (max: number) => Record<string, unknown> }> {
  const dir = workspace();
  const tokenizer = await trainByteLevelBpe([...TEXT, ...TEXT], { vocabSize: 300 });
  await tokenizer.save(join(dir, 'tokenizer.json'));
  const eos = tokenizer.tokenToId('<|endoftext|>')!;
  const lines = Array.from({ length: 6 }, () => TEXT).flat();
  await prepareShards(lines, (t) => tokenizer.encode(t, null, { addSpecialTokens: false }).ids, {
    dir: join(dir, 'shards'),
    shardTokens: 97,
    separator: eos,
  });
  await prepareShards(TEXT.slice(0, 3), (t) => tokenizer.encode(t, null, { addSpecialTokens: false }).ids, {
    dir: join(dir, 'valid'),
    separator: eos,
  });
  const doc = (max: number) => {
    const base = tinyGptConfig(dir, { max_steps: max, eval_steps: 4 });
    return {
      ...base,
      tokenizer: { name: 'hf-json', path: join(dir, 'tokenizer.json') },
      data: {
        train: { name: 'token-shards', path: join(dir, 'shards') },
        validation: { name: 'token-shards', path: join(dir, 'valid') },
        block_size: 16,
      },
    };
  };
  return { dir, doc };
}

describe('training from token shards (streamed, read on demand)', () => {
  it('trains, evaluates on separate shards, and resumes mid-epoch with the very next batches', async () => {
    const a = await shardWorkspace();
    const before = tf.memory().numTensors;
    const full = await run(a.doc(8), a.dir);
    expect(full.data.trainExamples).toBeGreaterThan(8 * 4); // the run ends mid-epoch
    expect(full.losses.at(-1)!).toBeLessThan(full.losses[0]!);
    expect(full.evalMetrics.loss).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
    const b = await shardWorkspace();
    const first = await run(b.doc(3), b.dir);
    expect(first.losses).toEqual(full.losses.slice(0, 3));
    const rest = await run(b.doc(8), b.dir, join(b.dir, 'run'));
    expect(rest.losses).toEqual(full.losses.slice(3));
  });

  it('says what is wrong: a tokenizer to train on tokens, an objective that needs text', async () => {
    const a = await shardWorkspace();
    const train = { ...a.doc(2), tokenizer: { train: 'bpe', vocab_size: 300 } };
    await expect(run(train, a.dir)).rejects.toThrow(/would be trained on text, but data.train is already tokens/);
    const mlm = { ...a.doc(2), objective: { name: 'seq2seq' } };
    await expect(run(mlm, a.dir)).rejects.toThrow(/builds its examples from text records/);
  });

  it('memory does not grow with the corpus: RSS of a 48 MB shard corpus run within 24 MB of a 0.2 MB one', async () => {
    const dir = workspace();
    const tokenizer = await trainByteLevelBpe(TEXT, { vocabSize: 300 });
    await tokenizer.save(join(dir, 'tokenizer.json'));
    // Written straight as tokens (no text to tokenize): 24M uint16 tokens in 12 shards, and a 100k-token one.
    const corpus = async (name: string, docs: number, tokens: number, shardTokens: number) => {
      let x = 12345;
      const gen = function* () {
        for (let d = 0; d < docs; d++) {
          const doc = new Uint16Array(tokens);
          for (let i = 0; i < doc.length; i++) doc[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % 300;
          yield doc;
        }
      };
      await writeShards(gen(), { dir: join(dir, name), shardTokens });
    };
    await corpus('big', 24, 1_000_000, 2_000_000);
    await corpus('small', 1, 100_000, 50_000);
    const measure = (name: string) => {
      const doc = {
        ...tinyGptConfig(dir, { max_steps: 30, logging_steps: 10, output_dir: join(dir, `run-${name}`) }),
        tokenizer: { name: 'hf-json', path: join(dir, 'tokenizer.json') },
        data: { train: { name: 'token-shards', path: join(dir, name) }, validation_fraction: 0.001, block_size: 16 },
      };
      const child = spawnSync(
        process.execPath,
        // A small young generation and a GC before the baseline: the peak then measures what
        // the run holds, not how much short-lived garbage V8 let pile up before collecting it.
        [
          '--expose-gc',
          '--max-semi-space-size=1',
          join(import.meta.dirname, 'rss-child.mjs'),
          JSON.stringify(doc),
          dir,
        ],
        {
          encoding: 'utf8',
        },
      );
      expect(child.status, child.stderr).toBe(0);
      return JSON.parse(child.stdout.split('RESULT ')[1]!) as {
        steps: number;
        rssGrowthMb: number;
        shardsSeen: number;
      };
    };
    const big = measure('big');
    const small = measure('small');
    expect(big.steps).toBe(30);
    // 120 random windows: the order spans the whole corpus, not its first shard.
    expect(big.shardsSeen).toBeGreaterThanOrEqual(10);
    // What the corpus may cost: the window index (1.6M windows x 4 bytes, twice) and page cache, not the tokens.
    expect(big.rssGrowthMb - small.rssGrowthMb).toBeLessThan(24);
  });
});

void Tokenizer;
