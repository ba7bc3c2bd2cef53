import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { formatJson, formatMarkdown, formatTable } from './report.js';
import { runConformance } from './run.js';
import type { LevelNumber } from './types.js';

export const CONFORMANCE_USAGE = `usage: tessera conformance --backend NAME [options]

Runs the conformance suite for a backend against the cpu reference and prints a table
(level, case, max error, tolerance, pass). Exits 1 when a case fails, 2 on bad usage.

  --backend NAME       backend under test (required)
  --level N[,N...]     levels to run, repeatable (default 1,2,3,4)
                         1 tfjs-core's shared op suite   2 op and gradient conformance
                         3 model vs PyTorch fixtures     4 training loss curves
  --report FILE        also write the report: FILE.md (Markdown) or FILE.json
  --filter TEXT        only cases (and level-1 specs) whose name contains TEXT
  --import MODULE      module that registers the backend (repeatable)
  --reference NAME     reference backend (default cpu)
  --expected FILE      level-1 expected-failure list (default: the one kept for NAME)
  --fixtures DIR       level-3 PyTorch fixtures (default: the ones @tessera/conformance ships)
  --failures-only      print only failing rows (the level lines and summary always)
  --require-all        a level that is not available counts as a failure
  --bf16               level 4 with the backend's matmuls in bf16 (vs fp32 reference), at
                         BF16_TRAINING_TOLERANCE; the backend must declare bf16 matmul
`;

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/**
 * The `tessera conformance` command; `argv` is what follows "conformance". Returns the
 * exit code: 0 all passed, 1 a case failed, 2 bad usage or the suite could not start.
 */
export async function conformanceCli(
  argv: readonly string[],
  io: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) },
): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  function parse() {
    return parseArgs({
      args: [...argv],
      options: {
        backend: { type: 'string' },
        level: { type: 'string', multiple: true },
        report: { type: 'string' },
        filter: { type: 'string' },
        import: { type: 'string', multiple: true },
        reference: { type: 'string' },
        expected: { type: 'string' },
        fixtures: { type: 'string' },
        'failures-only': { type: 'boolean' },
        'require-all': { type: 'boolean' },
        bf16: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
  }
  try {
    values = parse().values;
  } catch (err) {
    io.err(`tessera conformance: ${(err as Error).message}\n\n${CONFORMANCE_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(CONFORMANCE_USAGE);
    return 0;
  }
  if (!values.backend) {
    io.err(`tessera conformance: --backend is required\n\n${CONFORMANCE_USAGE}`);
    return 2;
  }
  const levels = (values.level ?? []).flatMap((l) => l.split(',')).map((l) => Number(l.trim()));
  const bad = levels.filter((l) => ![1, 2, 3, 4].includes(l));
  if (bad.length) {
    io.err(`tessera conformance: --level must be 1, 2, 3 or 4; got ${bad.join(', ')}`);
    return 2;
  }
  if (values.report && !/\.(md|json)$/i.test(values.report)) {
    io.err(`tessera conformance: --report must name a .md or .json file; got ${values.report}`);
    return 2;
  }
  let result: Awaited<ReturnType<typeof runConformance>>;
  try {
    result = await runConformance({
      backend: values.backend,
      ...(levels.length ? { levels: levels as LevelNumber[] } : {}),
      ...(values.reference ? { reference: values.reference } : {}),
      ...(values.filter ? { filter: values.filter } : {}),
      ...(values.import ? { imports: values.import } : {}),
      ...(values.expected ? { level1: { expectedFailures: values.expected } } : {}),
      ...(values.fixtures ? { level3: { fixturesDir: values.fixtures } } : {}),
      ...(values.bf16 ? { level4: { matmulPrecision: 'bf16' as const } } : {}),
      requireAllLevels: values['require-all'] ?? false,
      onLevel: (l) => io.err(`conformance: level ${l.level} ${l.status} (${(l.durationMs / 1000).toFixed(1)} s)`),
    });
  } catch (err) {
    io.err(`tessera conformance: ${(err as Error).message}`);
    return 2;
  }
  io.out(formatTable(result, { onlyFailures: values['failures-only'] ?? false }));
  if (values.report) {
    mkdirSync(dirname(values.report), { recursive: true });
    writeFileSync(
      values.report,
      values.report.toLowerCase().endsWith('.json') ? formatJson(result) : formatMarkdown(result),
    );
    io.out(`report written to ${values.report}`);
  }
  return result.pass ? 0 : 1;
}
