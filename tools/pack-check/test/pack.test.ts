import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..', '..');

interface WorkspacePackage {
  name: string;
  dir: string;
  private?: boolean;
  exports?: Record<string, unknown>;
  bin?: Record<string, string>;
}

function workspacePackages(): WorkspacePackage[] {
  const out: WorkspacePackage[] = [];
  for (const group of ['packages', 'apps']) {
    for (const entry of readdirSync(join(root, group), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(root, group, entry.name);
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
        if (!pkg.private) out.push({ ...pkg, dir });
      } catch {
        // a folder without package.json is not a package
      }
    }
  }
  return out;
}

const packages = workspacePackages();
const work = mkdtempSync(join(tmpdir(), 'tessera-pack-'));
const project = join(work, 'consumer');
const tarballs = new Map<string, string>();
const contents = new Map<string, string[]>();

beforeAll(() => {
  for (const pkg of packages) {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: pkg.dir, encoding: 'utf8' });
    const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    tarballs.set(pkg.name, join(work, info!.filename));
    contents.set(
      pkg.name,
      info!.files.map((f) => f.path),
    );
  }
  execFileSync('mkdir', ['-p', project]);
  const dependencies = Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:${file}`]));
  // Workspace packages depend on each other by version; point those at the tarballs too.
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies, overrides: dependencies }, null, 2),
  );
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], {
    cwd: project,
    stdio: 'pipe',
  });
});

describe('every package packs, installs and imports from a clean project', () => {
  it('found the publishable packages', () => {
    expect(packages.map((p) => p.name)).toEqual(
      expect.arrayContaining(['@tessera/tensor-core', '@tessera/kernels-cpu', '@tessera/cli']),
    );
  });

  for (const pkg of packages) {
    it(`${pkg.name}: tarball holds dist, types and README, not sources or tests`, () => {
      const files = contents.get(pkg.name)!;
      expect(files).toContain('package.json');
      expect(files).toContain('README.md');
      expect(files).toContain('dist/index.js');
      expect(files).toContain('dist/index.d.ts');
      expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
    });

    it(`${pkg.name}: every export resolves and imports in plain Node`, () => {
      const entries = Object.keys(pkg.exports ?? { '.': {} }).filter((e) => !e.endsWith('package.json'));
      for (const entry of entries) {
        const spec = entry === '.' ? pkg.name : `${pkg.name}/${entry.slice(2)}`;
        const script = `const m = await import(${JSON.stringify(spec)}); if (!Object.keys(m).length) throw new Error('no exports');`;
        execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: project, stdio: 'pipe' });
      }
    });
  }

  it('installed packages share one engine and train a step on cpu', () => {
    const script = `
      import { tf, useBackend, registry, layerNorm, attention } from '@tessera/tensor-core';
      import { engineOfKernels } from '@tessera/kernels-cpu';
      await useBackend('auto', { log: () => {} });
      if (engineOfKernels() !== tf.engine()) throw new Error('two engines');
      if (!registry.backend.has('cpu')) throw new Error('cpu backend not registered');
      const x = tf.randomNormal([2, 3, 8]);
      const g = tf.grad((t) => tf.sum(layerNorm(t, tf.ones([8]))))(x);
      const q = tf.randomNormal([1, 2, 3, 4]);
      const y = attention(q, q, q, { causal: true });
      console.log(JSON.stringify({ backend: tf.getBackend(), grad: g.shape, y: y.shape }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: project,
      encoding: 'utf8',
    });
    expect(JSON.parse(out.trim())).toEqual({ backend: 'cpu', grad: [2, 3, 8], y: [1, 2, 3, 4] });
  });

  it('type-checks a consumer against the shipped declarations (NodeNext)', () => {
    writeFileSync(
      join(project, 'use.ts'),
      `import { tf, registry, Module, type Parameter, loadConfig, z, gelu } from '@tessera/tensor-core';
       import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';
       class Lin extends Module {
         readonly w: Parameter = this.registerParameter('w', tf.zeros([2, 2]));
       }
       const m: Lin = new Lin();
       const y: tf.Tensor = gelu(m.w.value, 'tanh');
       const names: string[] = registry.model.list();
       const schema = z.object({ lr: z.number() });
       export const load = (f: string) => loadConfig(f, { schema }).lr;
       export { y, names, registerCpuDerivedBackend };
      `,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['use.ts'],
      }),
    );
    const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', project], { cwd: project, stdio: 'pipe' });
  });

  it('the installed tessera bin runs', () => {
    const out = execFileSync(join(project, 'node_modules', '.bin', 'tessera'), ['list', 'backend'], {
      cwd: project,
      encoding: 'utf8',
    });
    expect(out).toMatch(/backend \(\d+\)\n {2}cpu/);
  });
});
