import { writeFileSync } from 'node:fs';

export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number }[];
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** A self-contained SVG line chart (no dependencies): one line per series, shared axes. */
export function lineChartSvg(title: string, xLabel: string, series: Series[]): string {
  const width = 720;
  const height = 420;
  const m = { left: 64, right: 20, top: 40, bottom: 48 };
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  const [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0 || 1)) * (width - m.left - m.right);
  const sy = (y: number) => height - m.bottom - ((y - y0) / (y1 - y0 || 1)) * (height - m.top - m.bottom);
  const ticks = (a: number, b: number) => Array.from({ length: 5 }, (_, i) => a + ((b - a) * i) / 4);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    '<rect width="100%" height="100%" fill="white"/>',
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    `<line x1="${m.left}" y1="${height - m.bottom}" x2="${width - m.right}" y2="${height - m.bottom}" stroke="#333"/>`,
    `<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${height - m.bottom}" stroke="#333"/>`,
    `<text x="${width / 2}" y="${height - 10}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
  ];
  for (const t of ticks(x0, x1)) {
    parts.push(`<text x="${sx(t)}" y="${height - m.bottom + 16}" text-anchor="middle">${Math.round(t)}</text>`);
  }
  for (const t of ticks(y0, y1)) {
    parts.push(`<line x1="${m.left - 4}" y1="${sy(t)}" x2="${width - m.right}" y2="${sy(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 8}" y="${sy(t) + 4}" text-anchor="end">${t.toPrecision(3)}</text>`);
  }
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.y));
    if (pts.length > 1) {
      parts.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="1.8" points="${pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`,
      );
    }
    for (const p of pts.length <= 40 ? pts : [])
      parts.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="2.5" fill="${s.color}"/>`);
    parts.push(`<rect x="${width - 170}" y="${m.top + i * 18}" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${width - 152}" y="${m.top + i * 18 + 10}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function writeLineChart(path: string, title: string, xLabel: string, series: Series[]): void {
  writeFileSync(path, lineChartSvg(title, xLabel, series));
}
