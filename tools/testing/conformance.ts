import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { type ConformanceOptions, formatMarkdown, planConformance, summaryLine } from '@tessera/conformance';

/** Where every backend's report goes; scripts/test.mjs prints them after the run. */
export const REPORT_DIR = join(import.meta.dirname, '..', '..', '.tmp', 'conformance');

/**
 * The conformance suite as vitest tests, one per case (level 1, tfjs-core's shared suite,
 * is one test: it runs in one child process). A failing test is named after its case and
 * says what was off by how much; after the file, the whole report is written to
 * .tmp/conformance/<backend>.md.
 *
 * The plan is made while the file is collected (top-level await in the caller) because
 * vitest needs every test name up front; that is also where a backend that cannot start
 * fails, as a failed file.
 */
export async function describeConformance(options: ConformanceOptions & { reportName?: string }): Promise<void> {
  const plan = await planConformance(options);
  // reportName: a second run of one backend (e.g. in bf16) keeps its own report.
  const report = join(REPORT_DIR, `${options.reportName ?? plan.backend}.md`);
  describe(`conformance: backend "${plan.backend}" against "${plan.reference}"`, () => {
    afterAll(() => {
      const result = plan.result();
      if (!result.levels.length) return; // Every case filtered out (vitest -t): no report to speak of.
      mkdirSync(REPORT_DIR, { recursive: true });
      writeFileSync(report, formatMarkdown(result));
      console.log(`conformance ${plan.backend}: ${summaryLine(result)}; report: ${report}`);
    });
    for (const level of plan.levels) {
      describe(`level ${level.level}: ${level.title}`, () => {
        if (level.reason) {
          const name = `not available: ${level.reason}`;
          if (plan.requireAllLevels) {
            it(name, () => {
              throw new Error(`level ${level.level} is required (requireAllLevels) but ${name}`);
            });
          } else {
            it.skip(name, () => {});
          }
        }
        for (const c of level.cases) {
          it(
            c.name,
            async () => {
              const r = await c.run();
              if (r.pass) return;
              // Level 1's one test stands for thousands of specs: name the ones that regressed.
              const rows = c.level === 1 ? plan.levelResult(1).cases.filter((x) => !x.pass && x !== r) : [];
              const more = rows
                .slice(0, 20)
                .map((x) => `\n  ${x.name}: ${x.message}`)
                .join('');
              throw new Error(`${r.message}${more}${rows.length > 20 ? `\n  and ${rows.length - 20} more` : ''}`);
            },
            c.timeoutMs,
          );
        }
      });
    }
  });
}
