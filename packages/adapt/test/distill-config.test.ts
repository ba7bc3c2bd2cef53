import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '@tessera/kernels-cpu';
import '@tessera/optim';
import '@tessera/data';
import '@tessera/adapt';
import { ConfigError } from '@tessera/tensor-core';
import { listCheckpoints, loadRunConfig, runConfigFrom } from '@tessera/trainers';
import { run, tinyGpt, workspace } from './helpers.js';

/** Every problem of a config the run schema or a plugin rejects, as `path: expected`. */
function problemsOf(doc: Record<string, unknown>, dir: string): ConfigError {
  try {
    runConfigFrom(doc, dir);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('the config was accepted');
}

describe('distillation config checks (before any data is read)', () => {
  let dir: string;
  let teacher: string;
  let tokenizer: string;
  beforeAll(async () => {
    dir = workspace();
    const teacherRun = tinyGpt(dir, 'teacher', { max_steps: 1, save_steps: 1 });
    (teacherRun.model as Record<string, unknown>).n_layer = 4;
    await run(teacherRun, dir);
    teacher = join(dir, 'teacher');
    tokenizer = join(listCheckpoints(teacher).at(-1)!.path, 'tokenizer.json');
  });
  const student = (model: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => {
    const base = tinyGpt(dir, 'student');
    return {
      ...base,
      tokenizer: { path: tokenizer },
      model: { ...(base.model as Record<string, unknown>), ...model },
      adapter: { name: 'distillation', teacher },
      ...extra,
    };
  };

  it('accepts a student that fits the teacher', () => {
    expect(runConfigFrom(student(), dir).adapter).toMatchObject({ name: 'distillation', teacher });
  });

  it('resolves teacher against the config file, not the working directory', () => {
    mkdirSync(join(dir, 'configs'), { recursive: true });
    const file = join(dir, 'configs', 'student.json');
    const doc = { ...student(), adapter: { name: 'distillation', teacher: '../teacher' } };
    writeFileSync(file, JSON.stringify(doc));
    expect(process.cwd()).not.toBe(join(dir, 'configs'));
    expect(loadRunConfig(file).adapter?.teacher).toBe(teacher);
    writeFileSync(file, JSON.stringify({ ...doc, adapter: { name: 'distillation', teacher: '../no-teacher' } }));
    expect(() => loadRunConfig(file)).toThrow(
      new RegExp(`adapter\\.teacher[\\s\\S]*${join(dir, 'no-teacher').replace(/[/.-]/g, '\\$&')} does not exist`),
    );
  });

  it('lists every mismatch with the teacher at once: hidden size, head, layers, tokenizer', () => {
    const doc = student(
      { head: 'sequence-classification', n_embd: 16, n_head: 2, n_layer: 3 },
      { tokenizer: { train: 'bpe', vocab_size: 300 } },
    );
    const error = problemsOf(doc, dir);
    const paths = error.problems.map((p) => p.path).sort();
    expect(paths).toEqual(['adapter.every', 'model.head', 'model.n_embd', 'model.n_head', 'tokenizer']);
    const text = String(error);
    expect(text).toMatch(/model\.n_embd[\s\S]*32, the teacher's/);
    expect(text).toMatch(/model\.head[\s\S]*causal-lm, the teacher's head \(GPT2LMHeadModel\)/);
    expect(text).toMatch(/adapter\.every[\s\S]*the teacher has 0-3[\s\S]*\[0, 2, 4\]/);
    expect(text).toMatch(/tokenizer[\s\S]*the teacher's tokenizer, tokenizer: \{ path: /);
  });

  it("names a tokenizer whose vocabulary is not the teacher's, and a position table derived from block_size", () => {
    const json = JSON.parse(readFileSync(tokenizer, 'utf8'));
    json.added_tokens.push({
      id: 999,
      content: '[EXTRA]',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    const other = join(dir, 'other-tokenizer.json');
    writeFileSync(other, JSON.stringify(json));
    const doc = student({}, { tokenizer: { path: other } });
    (doc as { data: Record<string, unknown> }).data = { ...(doc.data as Record<string, unknown>), block_size: 8 };
    const error = problemsOf(doc, dir);
    expect(error.problems.map((p) => p.path).sort()).toEqual(['model.n_positions', 'tokenizer.path']);
    expect(String(error)).toMatch(/a tokenizer of 1000 tokens[\s\S]*the teacher's \d+-token vocabulary/);
    expect(String(error)).toMatch(/model\.n_positions[\s\S]*16, the teacher's[\s\S]*data\.block_size/);
    // With the teacher's table set explicitly, a shorter block fits.
    const fixed = student({ n_positions: 16 });
    (fixed as { data: Record<string, unknown> }).data = { ...(fixed.data as Record<string, unknown>), block_size: 8 };
    expect(() => runConfigFrom(fixed, dir)).not.toThrow();
  });

  it('names the wrong model family, with the other blocks still checked', () => {
    const doc = {
      ...student(),
      model: { name: 'bert', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64 },
      optimizer: { name: 'adamw', lr: -1 },
    };
    const error = problemsOf(doc, dir);
    expect(error.problems.map((p) => p.path).sort()).toEqual(['model.name', 'optimizer.lr']);
    expect(String(error)).toMatch(/model\.name[\s\S]*gpt, the teacher's family[\s\S]*model_type gpt2/);
  });

  it('without init_from_teacher only what the losses compare is checked', () => {
    const doc = student({ n_layer: 5, n_head: 2 }, {});
    (doc.adapter as Record<string, unknown>).init_from_teacher = false;
    expect(() => runConfigFrom(doc, dir)).not.toThrow();
    (doc.model as Record<string, unknown>).n_embd = 16;
    expect(problemsOf(doc, dir).problems.map((p) => p.path)).toEqual(['model.n_embd']);
  });
});
