import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '@tessera/cli';
import { capture } from './capture.js';

afterEach(() => vi.restoreAllMocks());

describe('tessera quantize, then eval / generate on the int8 checkpoint', () => {
  it('writes an int8 checkpoint that evaluates close to fp32 and generates; bad targets fail clearly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-int8-cli-'));
    writeFileSync(
      join(dir, 'corpus.txt'),
      `${Array.from({ length: 30 }, (_, i) => `The keeper lit lamp number ${i} above the sea and wrote in the log.`).join('\n')}\n`,
    );
    const config = join(dir, 'base.json');
    writeFileSync(
      config,
      JSON.stringify({
        backend: 'cpu',
        data: { train: { path: 'corpus.txt' }, validation_fraction: 0.2, block_size: 16 },
        objective: { name: 'causal-lm' },
        optimizer: { name: 'adamw', lr: 0.003 },
        tokenizer: { train: 'bpe', vocab_size: 280 },
        model: { name: 'gpt', n_embd: 32, n_layer: 1, n_head: 2 },
        training: { output_dir: join(dir, 'base'), max_steps: 2, per_device_train_batch_size: 4 },
      }),
    );
    const { out, err } = capture();
    expect(await main(['train', config]), err.join('\n')).toBe(0);
    const int8 = join(dir, 'int8');
    expect(await main(['quantize', '--checkpoint', join(dir, 'base'), '--out', int8]), err.join('\n')).toBe(0);
    const printed = out.join('\n');
    expect(printed).toMatch(/int8 {4}transformer\.h\.0\.attn\.c_attn \[96, 32\]/);
    expect(printed).toMatch(/float32 transformer\.wte: embedding lookup/);
    expect(printed).toMatch(/4 Linear layers int8 \(12,288 weights/);
    expect(existsSync(join(int8, 'tokenizer.json'))).toBe(true);

    const checkpoint = join(dir, 'base', 'checkpoint-2');
    const loss = (line: string | undefined) => Number(/loss ([\d.]+)/.exec(line ?? '')?.[1]);
    expect(await main(['eval', config, '--checkpoint', checkpoint]), err.join('\n')).toBe(0);
    const fp32Loss = loss(out.findLast((l) => l.startsWith('eval ')));
    expect(await main(['eval', config, '--checkpoint', int8]), err.join('\n')).toBe(0);
    const int8Loss = loss(out.findLast((l) => l.startsWith('eval ')));
    expect(err.join('\n')).toMatch(/int8-dynamic \(.*int8\):/);
    expect(Number.isFinite(int8Loss)).toBe(true);
    expect(Math.abs(int8Loss - fp32Loss)).toBeLessThan(0.01);

    const options = ['--prompt', 'The keeper', '--max-new-tokens', '3', '--temperature', '0', '--backend', 'cpu'];
    expect(await main(['generate', '--checkpoint', int8, ...options]), err.join('\n')).toBe(0);
    expect(out.at(-1)).toMatch(/^The keeper/);

    expect(
      await main(['quantize', '--checkpoint', checkpoint, '--out', join(dir, 'x'), '--target-modules', 'qkv']),
    ).toBe(1);
    expect(err.join('\n')).toMatch(
      /match no Linear layer of GPT2LMHeadModel\. Its Linear layers are named: c_attn, c_fc, c_proj/,
    );
    expect(
      await main(['quantize', '--checkpoint', checkpoint, '--out', join(dir, 'y'), '--target-modules', 'ln_1']),
    ).toBe(1);
    expect(err.join('\n')).toMatch(/not Linear layers: transformer\.h\.0\.ln_1 \(LayerNorm\)/);
    expect(await main(['quantize', '--checkpoint', int8, '--out', join(dir, 'z')])).toBe(1);
    expect(err.join('\n')).toMatch(/already an int8 checkpoint/);
  });
});
