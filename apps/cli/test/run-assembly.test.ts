import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '@tessera/cli';
import { isPrepareDocument, loadPrepareConfig } from '@tessera/data';
import { loadConfig, z } from '@tessera/tensor-core';
import { loadRunConfig, validateRunConfig } from '@tessera/trainers';
import { capture } from './capture.js';

afterEach(() => vi.restoreAllMocks());

const REPO = resolve(import.meta.dirname, '../../..');
const MAIN_CONFIG = join(REPO, 'configs/gpt-pretrain.yaml');

describe('run configs are checked whole, before any work', () => {
  it('every example config in configs/ is valid against the registered plugins', () => {
    let prepare = 0;
    for (const file of readdirSync(join(REPO, 'configs')).filter((f) => f.endsWith('.yaml'))) {
      const path = join(REPO, 'configs', file);
      // A corpus pipeline (tessera data prepare) is checked by its own schema.
      if (isPrepareDocument(loadConfig(path, { schema: z.record(z.string(), z.unknown()) }))) {
        expect(() => loadPrepareConfig(path), file).not.toThrow();
        prepare++;
        continue;
      }
      const config = loadRunConfig(path);
      expect(() => validateRunConfig(config, file), file).not.toThrow();
    }
    expect(prepare).toBe(1);
  });

  it('three mistakes in model, optimizer and training: all reported at once, exit 2, in under a second', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bad-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      `extends: ${MAIN_CONFIG}\nmodel: { n_embed: 64 }\noptimizer: { lr: -1 }\ntraining: { output_dir: ${join(dir, 'run')}, max_steps: 0 }\n`,
    );
    const { err } = capture();
    const started = performance.now();
    expect(await main(['train', file])).toBe(2);
    const seconds = (performance.now() - started) / 1000;
    const text = err.join('\n');
    expect(text).toMatch(/Invalid config .*bad\.yaml \(3 problems\)/);
    expect(text).toContain('model.n_embed: found 64; expected no such key here (check the spelling)');
    expect(text).toContain('optimizer.lr: found -1; expected a learning rate: a finite number >= 0');
    expect(text).toContain('training.max_steps: found 0; expected a number > 0');
    // Nothing was read or trained: no tokenizer, no output directory.
    expect(text).not.toMatch(/data:|tokenizer:/);
    expect(seconds).toBeLessThan(1);
  });

  it('an unknown plugin name says which ones exist', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bad-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      `extends: ${MAIN_CONFIG}\nobjective: { name: causal-llm }\ncallbacks: [{ name: nope }]\ntraining: { output_dir: ${join(dir, 'run')} }\n`,
    );
    const { err } = capture();
    expect(await main(['train', file])).toBe(2);
    const text = err.join('\n');
    expect(text).toMatch(
      /objective\.name: found "causal-llm"; expected a registered objective \(did you mean "causal-lm"\?\)/,
    );
    expect(text).toMatch(/callbacks\[0\]\.name: found "nope"; expected a registered callback/);
  });
});

describe('model directories and backends by name', () => {
  it('a plain HF model directory works for generate and eval; without tokenizer.json it says how to name one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-hf-'));
    writeFileSync(
      join(dir, 'corpus.txt'),
      `${Array.from({ length: 30 }, (_, i) => `The keeper lit lamp number ${i} above the sea and wrote in the log.`).join('\n')}\n`,
    );
    const config = join(dir, 'run.json');
    writeFileSync(
      config,
      JSON.stringify({
        // Named without plugins: the first-party package is found as auto finds it.
        backend: 'native',
        tokenizer: { train: 'bpe', vocab_size: 280 },
        data: { train: { path: 'corpus.txt' }, validation_fraction: 0.2, block_size: 16 },
        objective: { name: 'causal-lm' },
        model: { name: 'gpt', n_embd: 32, n_layer: 1, n_head: 2 },
        optimizer: { name: 'adamw', lr: 0.003 },
        training: { output_dir: join(dir, 'run'), max_steps: 2, per_device_train_batch_size: 4 },
      }),
    );
    const { out, err } = capture();
    expect(await main(['train', config]), err.join('\n')).toBe(0);
    expect(out.join('\n')).toMatch(/tessera: backend native \(/);
    // An HF export: config.json + model.safetensors, as transformers' save_pretrained writes them.
    const hf = join(dir, 'hf-export');
    mkdirSync(hf);
    for (const f of ['config.json', 'model.safetensors'])
      copyFileSync(join(dir, 'run', 'checkpoint-2', f), join(hf, f));
    const generate = [
      'generate',
      '--checkpoint',
      hf,
      '--prompt',
      'The keeper',
      '--max-new-tokens',
      '3',
      '--backend',
      'cpu',
    ];
    expect(await main(generate)).toBe(1);
    expect(err.join('\n')).toContain(`${hf} has no tokenizer.json. Name one with --tokenizer FILE`);
    expect(await main([...generate, '--tokenizer', join(dir, 'run', 'tokenizer.json')])).toBe(0);
    expect(out.at(-1)).toMatch(/^The keeper/);
    copyFileSync(join(dir, 'run', 'tokenizer.json'), join(hf, 'tokenizer.json'));
    expect(await main(['eval', config, '--checkpoint', hf, '--set', 'backend=cpu']), err.join('\n')).toBe(0);
    expect(out.join('\n')).toMatch(/eval .*hf-export: loss [\d.]+/);
    expect(await main(['generate', '--checkpoint', join(dir, 'nothing'), '--prompt', 'x', '--backend', 'cpu'])).toBe(1);
    expect(err.join('\n')).toMatch(/holds no model: no config\.json \+ model\.safetensors/);
  });
});
