import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

// A third-party plugin package, built from the packed tarballs like any npm user's: it
// registers a model family, an objective, a tokenizer and a callback; one config names all
// four, and the run trains, checkpoints, resumes and loads back.
const root = resolve(import.meta.dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'tessera-plugin-'));
const project = join(work, 'user-project');
const NEEDED = ['tensor-core', 'kernels-cpu', 'transformer', 'optim', 'data', 'trainers'];

function pack(dir: string): string {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: dir, encoding: 'utf8' });
  const [info] = JSON.parse(out) as { filename: string }[];
  return `file:${join(work, info!.filename)}`;
}

beforeAll(() => {
  const tarballs: Record<string, string> = {};
  for (const dir of NEEDED) tarballs[`@tessera/${dir}`] = pack(join(root, 'packages', dir));
  const plugin = join(work, 'tessera-plugin-demo');
  mkdirSync(plugin);
  cpSync(join(import.meta.dirname, 'plugin-demo', 'index.js'), join(plugin, 'index.js'));
  const peers = Object.fromEntries(['tensor-core', 'transformer', 'data'].map((d) => [`@tessera/${d}`, '*']));
  writeFileSync(
    join(plugin, 'package.json'),
    JSON.stringify({
      name: 'tessera-plugin-demo',
      version: '1.0.0',
      type: 'module',
      main: 'index.js',
      peerDependencies: peers,
    }),
  );
  const dependencies = { ...tarballs, 'tessera-plugin-demo': pack(plugin) };
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'user-project', private: true, type: 'module', dependencies, overrides: tarballs }, null, 2),
  );
  cpSync(join(import.meta.dirname, 'plugin-demo', 'run.mjs'), join(project, 'run.mjs'));
  const lines = [
    'The keeper climbed the stairs and lit the lamp above the sea.',
    'The ships saw the light and kept away from the rocks.',
    'In the morning the keeper put out the lamp and wrote in the log.',
  ];
  writeFileSync(
    join(project, 'corpus.txt'),
    `${Array.from({ length: 12 }, () => lines)
      .flat()
      .join('\n')}\n`,
  );
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], {
    cwd: project,
    stdio: 'pipe',
  });
});

interface RunResult {
  losses: number[];
  steps: number;
  sample?: string;
  lastCheckpoint: string;
  architecture: string;
  loadedEqualsTrained: boolean;
  evalMetrics: Record<string, number>;
  events: { event: string; step: number; checkpoint?: string }[];
}

function train(out: string, maxSteps: number, resume?: string): RunResult {
  const stdout = execFileSync(process.execPath, ['run.mjs', out, String(maxSteps), ...(resume ? [resume] : [])], {
    cwd: project,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(stdout.split('RESULT ')[1]!) as RunResult;
}

describe('a plugin package from npm: model, objective, tokenizer and callback named in one config', () => {
  it('trains, checkpoints, resumes bit for bit and loads back through the registry', () => {
    const full = train(join(project, 'full'), 6);
    expect(full.steps).toBe(6);
    expect(full.losses.at(-1)!).toBeLessThan(full.losses[0]!);
    expect(full.evalMetrics.accuracy).toBeGreaterThan(0);
    expect(full.architecture).toBe('BigramLM');
    expect(full.loadedEqualsTrained).toBe(true);
    // The family's generator made the end-of-run sample.
    expect(full.sample).toMatch(/^the keeper/);
    // The plugin callback saw every event, and each save after the checkpoint existed.
    const kinds = new Set(full.events.map((e) => e.event));
    expect([...kinds]).toEqual(['train-begin', 'step-end', 'evaluate', 'save', 'train-end']);
    const saves = full.events.filter((e) => e.event === 'save');
    expect(saves.map((e) => e.step)).toEqual([2, 4, 6]);
    for (const s of saves) expect(existsSync(join(s.checkpoint!, 'trainer_state.json'))).toBe(true);

    const first = train(join(project, 'split'), 3);
    expect(first.losses).toEqual(full.losses.slice(0, 3));
    const rest = train(join(project, 'split'), 6, join(project, 'split'));
    expect(rest.losses).toEqual(full.losses.slice(3));
    expect(rest.loadedEqualsTrained).toBe(true);
  });
});
