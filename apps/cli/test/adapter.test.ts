import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '@tessera/cli';
import { capture } from './capture.js';

afterEach(() => vi.restoreAllMocks());

describe('tessera train / eval / generate with a LoRA adapter', () => {
  it('trains a base, fine-tunes it with adapter: lora (adapter-only checkpoints), then evaluates and generates with --adapter', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-lora-cli-'));
    writeFileSync(
      join(dir, 'corpus.txt'),
      `${Array.from({ length: 30 }, (_, i) => `The keeper lit lamp number ${i} above the sea and wrote in the log.`).join('\n')}\n`,
    );
    const common = {
      backend: 'cpu',
      data: { train: { path: 'corpus.txt' }, validation_fraction: 0.2, block_size: 16 },
      objective: { name: 'causal-lm' },
      optimizer: { name: 'adamw', lr: 0.003 },
    };
    writeFileSync(
      join(dir, 'base.json'),
      JSON.stringify({
        ...common,
        tokenizer: { train: 'bpe', vocab_size: 280 },
        model: { name: 'gpt', n_embd: 32, n_layer: 1, n_head: 2 },
        training: { output_dir: join(dir, 'base'), max_steps: 2, per_device_train_batch_size: 4 },
      }),
    );
    const loraConfig = join(dir, 'lora.json');
    writeFileSync(
      loraConfig,
      JSON.stringify({
        ...common,
        tokenizer: { path: 'base/checkpoint-2/tokenizer.json' },
        model: { name: 'gpt', from: 'base' },
        adapter: { name: 'lora', r: 2, lora_alpha: 4, target_modules: ['c_attn'] },
        training: { output_dir: join(dir, 'lora'), max_steps: 2, per_device_train_batch_size: 4 },
      }),
    );
    const { out, err } = capture();
    expect(await main(['train', join(dir, 'base.json')]), err.join('\n')).toBe(0);
    expect(await main(['train', loraConfig]), err.join('\n')).toBe(0);
    expect(out.join('\n')).toMatch(/trainable through adapter lora, \d+\.\d+%/);
    const checkpoint = join(dir, 'lora', 'checkpoint-2');
    expect(existsSync(join(checkpoint, 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(checkpoint, 'model.safetensors'))).toBe(false);
    expect(await main(['eval', loraConfig, '--checkpoint', checkpoint]), err.join('\n')).toBe(0);
    expect(out.join('\n')).toMatch(/eval .*checkpoint-2: loss [\d.]+/);
    const generate = ['generate', '--checkpoint', join(dir, 'base'), '--prompt', 'The keeper'];
    const options = ['--max-new-tokens', '3', '--temperature', '0', '--backend', 'cpu'];
    expect(await main([...generate, '--adapter', join(dir, 'lora'), ...options]), err.join('\n')).toBe(0);
    expect(out.at(-1)).toMatch(/^The keeper/);
    expect(await main([...generate, '--adapter', join(dir, 'base'), ...options])).toBe(1);
    expect(err.join('\n')).toMatch(/holds no adapter_config\.json/);
  });
});
