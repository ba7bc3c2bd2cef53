import { fmt, formatTolerance } from './compare.js';
import type { CaseResult, ConformanceResult, LevelResult } from './types.js';

function levelLine(l: LevelResult): string {
  const status = l.status === 'not-available' ? `NOT AVAILABLE: ${l.reason}` : l.status.toUpperCase();
  const counts =
    l.status === 'not-available'
      ? ''
      : l.level1
        ? ` (${l.level1.passed} passed, ${l.level1.failed} failed of which ${l.level1.expectedFailures} expected, ${l.level1.pending} pending)`
        : ` (${l.cases.filter((c) => c.pass).length}/${l.cases.length} cases)`;
  const time = l.status === 'not-available' ? '' : ` in ${(l.durationMs / 1000).toFixed(1)} s`;
  return `level ${l.level} ${l.title}: ${status}${counts}${time}`;
}

function errorCell(c: CaseResult): string {
  if (c.maxAbsErr === null) return '-';
  return `${fmt(c.maxAbsErr)} (rel ${fmt(c.maxRelErr)})`;
}

function rows(result: ConformanceResult, onlyFailures: boolean): string[][] {
  const out: string[][] = [];
  for (const l of result.levels) {
    for (const c of l.cases) {
      if (onlyFailures && c.pass) continue;
      const kernel = c.kernel === 'reference-composition' ? ' [no own kernel]' : '';
      out.push([
        String(c.level),
        `${c.name}${kernel}`,
        errorCell(c),
        formatTolerance(c.tolerance),
        c.pass ? 'pass' : 'FAIL',
        c.pass ? '' : c.message,
      ]);
    }
  }
  return out;
}

const HEADER = ['level', 'case', 'max abs err (rel)', 'tolerance', 'pass'];

/** A plain-text table for a terminal: a line per level, a row per case, failures with their reason. */
export function formatTable(result: ConformanceResult, options: { onlyFailures?: boolean } = {}): string {
  const body = rows(result, options.onlyFailures ?? false);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .slice(0, 5)
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [
    `conformance: backend "${result.backend}" against "${result.reference}"`,
    ...result.levels.map((l) => `  ${levelLine(l)}`),
    '',
    line(HEADER),
    line(widths.map((w) => '-'.repeat(w))),
  ];
  for (const r of body) {
    out.push(line(r));
    if (r[5]) out.push(`      -> ${r[5]}`);
  }
  out.push('', summaryLine(result));
  return out.join('\n');
}

export function summaryLine(result: ConformanceResult): string {
  const { passed, failed, skipped } = result.counts;
  const na = result.levels.filter((l) => l.status === 'not-available').map((l) => l.level);
  return (
    `${result.pass ? 'PASS' : 'FAIL'}: ${passed} passed, ${failed} failed, ${skipped} skipped` +
    (na.length ? `; level ${na.join(', ')} not available` : '') +
    ` (${(result.durationMs / 1000).toFixed(1)} s)`
  );
}

const escapeMd = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The same report as Markdown, for a CI artifact or a PR comment. */
export function formatMarkdown(result: ConformanceResult): string {
  const out = [
    `# Conformance: \`${result.backend}\` vs \`${result.reference}\``,
    '',
    `${summaryLine(result)} — started ${result.startedAt}`,
    '',
    ...result.levels.map((l) => `- ${escapeMd(levelLine(l))}`),
    '',
    `| ${HEADER.join(' | ')} | message |`,
    `|${HEADER.map(() => '---').join('|')}|---|`,
  ];
  for (const l of result.levels) {
    for (const c of l.cases) {
      out.push(
        `| ${c.level} | ${escapeMd(c.name)} | ${errorCell(c)} | ${formatTolerance(c.tolerance)} | ${
          c.pass ? 'pass' : '**FAIL**'
        } | ${escapeMd(c.pass ? '' : c.message)} |`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}

/** JSON with infinities spelled out (JSON has no Infinity). */
export function formatJson(result: ConformanceResult): string {
  return `${JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2)}\n`;
}
