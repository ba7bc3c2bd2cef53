import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, getMatmulPrecision, matmulPrecisionSupport, registry, useBackend } from '@tessera/tensor-core';
import { runConfigFrom, Trainer } from '@tessera/trainers';
import { describe, expect, it } from 'vitest';
import { quiet, run, tinyGptConfig, workspace } from './helpers.js';

// Whether this machine's native backend has bf16 matmul (AVX-512 BF16); loads it if installed.
const nativeBf16 = await useBackend('native', { log: () => {} }).then(
  () => matmulPrecisionSupport('native', 'bf16').supported,
  () => false,
);

describe('training.bf16', () => {
  it('defaults to false, and on a backend without bf16 matmul is a ConfigError before any work', async () => {
    const dir = workspace();
    // A config object made without the document check (runConfigFrom reports a named
    // backend itself, see below): Trainer.create asks the backend it resolves.
    const config = runConfigFrom(tinyGptConfig(dir), dir);
    const err = await Trainer.create({ ...config, training: { ...config.training, bf16: true } }, quiet).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toContain(
      'training.bf16: found true; expected false: backend cpu does not support bf16 matmul; remove bf16 or use a backend that has it',
    );
    expect(existsSync(join(dir, 'run'))).toBe(false); // nothing ran, nothing written
    expect(runConfigFrom(tinyGptConfig(dir), dir).training.bf16).toBe(false);
  });

  it('a named backend without bf16 is reported with the schema problems, in one ConfigError', () => {
    const dir = workspace();
    const doc = tinyGptConfig(dir, { bf16: true, learning_rate: 'fast' });
    let message = '';
    try {
      runConfigFrom(doc, dir);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = String((err as Error).message);
    }
    expect(message).toContain('training.learning_rate');
    expect(message).toContain('training.bf16: found true; expected false: backend cpu does not support bf16 matmul');
  });

  it.runIf(nativeBf16)('on native with AVX-512 BF16: trains with bf16 matmuls, close to the fp32 run', async () => {
    const dir = workspace();
    const base = { ...tinyGptConfig(dir), backend: 'native' };
    const fp32 = await run({ ...base, training: { ...(base.training as object), output_dir: join(dir, 'fp32') } }, dir);
    expect(getMatmulPrecision('native')).toBe('fp32');
    const trainer = await Trainer.create(
      runConfigFrom(
        { ...base, training: { ...(base.training as object), bf16: true, output_dir: join(dir, 'bf16') } },
        dir,
      ),
      quiet,
    );
    expect(getMatmulPrecision('native')).toBe('bf16');
    const bf16 = await trainer.train().finally(() => trainer.dispose());
    expect(bf16.losses.length).toBe(fp32.losses.length);
    for (const [i, l] of bf16.losses.entries()) {
      expect(Math.abs(l - fp32.losses[i]!) / fp32.losses[i]!, `step ${i}: ${l} vs ${fp32.losses[i]}`).toBeLessThan(
        0.02,
      );
    }
    expect(bf16.losses).not.toEqual(fp32.losses); // bf16 really ran
    // A later run without bf16 is back on fp32 matmuls.
    const again = await Trainer.create(
      runConfigFrom({ ...base, training: { ...(base.training as object), max_steps: 1 } }, dir),
      quiet,
    );
    expect(getMatmulPrecision('native')).toBe('fp32');
    again.dispose();
  });

  it.runIf(registry.backend.has('native'))(
    'on native without AVX-512 BF16 (TESSERA_NATIVE_DISABLE=avx512bf16): the ConfigError names the CPU feature',
    () => {
      const dir = workspace();
      const doc = { ...tinyGptConfig(dir, { bf16: true }), backend: 'native' };
      const script = `
        import { Trainer, runConfigFrom } from '@tessera/trainers';
        const doc = JSON.parse(process.env.DOC);
        try { await Trainer.create(runConfigFrom(doc, process.env.DIR), { tty: false, log: () => {}, handleSigint: false }); console.log('created'); }
        catch (e) { console.log(JSON.stringify({ name: e.constructor.name, message: e.message })); }`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        cwd: new URL('..', import.meta.url),
        env: { ...process.env, TESSERA_NATIVE_DISABLE: 'avx512bf16', DOC: JSON.stringify(doc), DIR: dir },
        encoding: 'utf8',
      });
      const result = JSON.parse(out.trim().split('\n').pop()!);
      expect(result.name).toBe('ConfigError');
      expect(result.message).toContain(
        'training.bf16: found true; expected false: backend native on this CPU lacks AVX-512 BF16 (avx512_bf16); remove bf16 or use a CPU that has it',
      );
      expect(existsSync(join(dir, 'run'))).toBe(false);
    },
  );
});
