import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, resolveConfig, z } from '@tessera/tensor-core';

const schema = z
  .object({
    backend: z.string().default('auto'),
    seed: z.number().int(),
    model: z.object({ name: z.enum(['gpt', 'bert', 't5']), nLayer: z.number().int().positive() }).strict(),
    optimizer: z.object({ name: z.string(), lr: z.number().positive() }).strict(),
    data: z.object({ files: z.array(z.string()).min(1) }).strict(),
  })
  .strict();

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-config-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const good = `
seed: 1
model: { name: gpt, nLayer: 2 }
optimizer: { name: adamw, lr: 0.001 }
data: { files: [a.txt] }
`;

describe('config', () => {
  it('loads YAML and JSON with defaults', () => {
    const d = dir({
      'run.yaml': good,
      'run.json': JSON.stringify({
        seed: 1,
        model: { name: 'bert', nLayer: 1 },
        optimizer: { name: 'sgd', lr: 1 },
        data: { files: ['x'] },
      }),
    });
    expect(loadConfig(join(d, 'run.yaml'), { schema })).toMatchObject({ backend: 'auto', model: { name: 'gpt' } });
    expect(loadConfig(join(d, 'run.json'), { schema }).model.name).toBe('bert');
  });

  it('resolves extends: recursively; objects merge, arrays replace', () => {
    const d = dir({
      'base.yaml': good,
      'mid.yaml': 'extends: base.yaml\noptimizer: { lr: 0.01 }\ndata: { files: [b.txt, c.txt] }\n',
      'top.yaml': 'extends: ./mid.yaml\nmodel: { nLayer: 6 }\n',
    });
    const c = loadConfig(join(d, 'top.yaml'), { schema });
    expect(c.optimizer).toEqual({ name: 'adamw', lr: 0.01 });
    expect(c.model).toEqual({ name: 'gpt', nLayer: 6 });
    expect(c.data.files).toEqual(['b.txt', 'c.txt']);
  });

  it('applies --set overrides with YAML-typed values, including array indices', () => {
    const d = dir({ 'run.yaml': good });
    const c = loadConfig(join(d, 'run.yaml'), {
      schema,
      overrides: ['optimizer.lr=3e-4', 'model.nLayer=12', 'data.files[1]=z.txt', 'backend=cpu'],
    });
    expect(c.optimizer.lr).toBe(3e-4);
    expect(c.model.nLayer).toBe(12);
    expect(c.data.files).toEqual(['a.txt', 'z.txt']);
    expect(c.backend).toBe('cpu');
  });

  it('reports every problem at once with path, value found and what was expected', () => {
    const d = dir({
      'bad.yaml': `
seed: 1.5
model: { name: gpt3, nLayer: -2, nlayers: 4 }
optimizer: { name: adamw, lr: "fast" }
data: { files: [] }
`,
    });
    const err = problemsOf(() => loadConfig(join(d, 'bad.yaml'), { schema }));
    const byPath = Object.fromEntries(err.problems.map((p) => [p.path, p]));
    expect(Object.keys(byPath).sort()).toEqual(
      ['data.files', 'model.name', 'model.nLayer', 'model.nlayers', 'optimizer.lr', 'seed'].sort(),
    );
    expect(byPath.seed).toMatchObject({ found: 1.5, expected: 'an integer' });
    expect(byPath['data.files']).toMatchObject({ found: [], expected: 'at least 1 item(s)' });
    expect(byPath['model.name']).toMatchObject({ found: 'gpt3', expected: 'one of "gpt", "bert", "t5"' });
    expect(byPath['optimizer.lr']).toMatchObject({ found: 'fast', expected: 'a number' });
    expect(byPath['model.nLayer']).toMatchObject({ found: -2, expected: 'a number > 0' });
    expect(byPath['model.nlayers']!.expected).toMatch(/no such key/);
    expect(err.message).toContain('6 problems');
    expect(err.message).toContain('- optimizer.lr: found "fast"; expected a number');
  });

  it('reports a missing required section as found nothing', () => {
    const err = problemsOf(() =>
      resolveConfig({ seed: 1, model: { name: 'gpt', nLayer: 1 }, data: { files: ['a'] } }, { schema }),
    );
    expect(err.problems).toEqual([{ path: 'optimizer', found: undefined, expected: 'an object' }]);
    expect(err.message).toContain('optimizer: found nothing; expected an object');
  });

  it('explains YAML syntax errors with line and column, missing files, cycles and malformed overrides', () => {
    const d = dir({
      'broken.yaml': 'seed: 1\nmodel: { name: gpt\n',
      'a.yaml': 'extends: b.yaml\n',
      'b.yaml': 'extends: a.yaml\n',
      'run.yaml': good,
    });
    expect(problemsOf(() => loadConfig(join(d, 'broken.yaml'), { schema })).message).toMatch(
      /syntax error at line \d+, column \d+/,
    );
    expect(problemsOf(() => loadConfig(join(d, 'nope.yaml'), { schema })).message).toContain('no such file');
    expect(problemsOf(() => loadConfig(join(d, 'a.yaml'), { schema })).message).toMatch(
      /a\.yaml -> .*b\.yaml -> .*a\.yaml/,
    );
    expect(
      problemsOf(() => loadConfig(join(d, 'run.yaml'), { schema, overrides: ['optimizer.lr'] })).message,
    ).toContain('path.to.key=value');
  });
});
