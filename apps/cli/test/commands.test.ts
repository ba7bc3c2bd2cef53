import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '@tessera/cli';
import { capture } from './capture.js';

const LINES = [
  'The lighthouse keeper climbed the stairs each evening and lit the lamp above the sea. The ships saw the light.',
  'In the morning the keeper put out the lamp, cleaned the glass, and wrote in the log. The log was long.',
  'When the storm came the keeper stayed awake all night and watched the light turn. The storm passed.',
  'A small boat came to the island with bread, oil for the lamp, and letters from the town. The boat left.',
];

afterEach(() => vi.restoreAllMocks());

function workdir(config: Record<string, unknown>): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
  writeFileSync(join(dir, 'corpus.txt'), `${[...LINES, ...LINES, ...LINES].join('\n')}\n`);
  const file = join(dir, 'run.json');
  writeFileSync(
    file,
    JSON.stringify({ ...config, training: { ...(config.training as object), output_dir: join(dir, 'run') } }),
  );
  return { dir, config: file };
}

describe('tessera train / eval / generate', () => {
  it('trains a tiny GPT from a config, then evaluates and samples from the checkpoint', async () => {
    const { dir, config } = workdir({
      backend: 'cpu',
      tokenizer: { train: 'bpe', vocab_size: 280 },
      data: { train: { path: 'corpus.txt' }, validation_fraction: 0.2, block_size: 16 },
      objective: { name: 'causal-lm' },
      model: { name: 'gpt', n_embd: 32, n_layer: 1, n_head: 2 },
      optimizer: { name: 'adamw', lr: 0.003 },
      metrics: ['loss', 'perplexity'],
      training: { max_steps: 4, per_device_train_batch_size: 4, logging_steps: 2 },
    });
    const { out, err } = capture();
    expect(await main(['train', config]), err.join('\n')).toBe(0);
    expect(out.join('\n')).toMatch(/step 4\/4 +loss/);
    expect(await main(['eval', config, '--checkpoint', join(dir, 'run')])).toBe(0);
    expect(out.join('\n')).toMatch(/eval .*checkpoint-4: loss [\d.]+, perplexity/);
    expect(
      await main([
        'generate',
        '--checkpoint',
        join(dir, 'run'),
        '--prompt',
        'The keeper',
        '--max-new-tokens',
        '5',
        '--backend',
        'cpu',
      ]),
    ).toBe(0);
    expect(out.at(-1)).toMatch(/^The keeper/);
    expect(await main(['train', config, '--data', 'x.txt'])).toBe(2);
    expect(err.join('\n')).toContain('--data continues a finished run on new data; give --resume DIR too.');
  });

  it('embeds and searches with a BERT checkpoint', async () => {
    const { dir, config } = workdir({
      backend: 'cpu',
      tokenizer: { train: 'wordpiece', vocab_size: 200 },
      data: { train: { path: 'corpus.txt' }, validation_fraction: 0, block_size: 32 },
      objective: { name: 'mlm' },
      model: { name: 'bert', hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 48 },
      optimizer: { name: 'adamw', lr: 0.001 },
      training: { max_steps: 2, per_device_train_batch_size: 4 },
    });
    capture();
    expect(await main(['train', config])).toBe(0);
    const docs = join(dir, 'docs.txt');
    writeFileSync(docs, `${LINES.join('\n')}\n`);
    const output = join(dir, 'emb.jsonl');
    expect(
      await main(['embed', '--checkpoint', join(dir, 'run'), '--input', docs, '--output', output, '--backend', 'cpu']),
    ).toBe(0);
    const rows = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(4);
    const norm = Math.sqrt(rows[0].embedding.reduce((s: number, x: number) => s + x * x, 0));
    expect(norm).toBeCloseTo(1, 5);
    const { out } = capture();
    expect(
      await main([
        'search',
        '--checkpoint',
        join(dir, 'run'),
        '--documents',
        docs,
        '--query',
        LINES[2]!,
        '--top-k',
        '2',
        '--backend',
        'cpu',
      ]),
    ).toBe(0);
    // The query is one of the documents: it must come first, with similarity 1.
    expect(out[0]).toMatch(/^1\.0000 {2}When the storm came/);
  });

  it('a missing config file is a usage error with the path', async () => {
    const { err } = capture();
    expect(await main(['train', '/nope/run.yaml'])).toBe(2);
    expect(err.join('\n')).toMatch(/Invalid config \/nope\/run\.yaml.*no such file/s);
  });
});
