import { describe, expect, it } from 'vitest';
import { registry } from '@tessera/tensor-core';
import { createMetrics, lineChartSvg } from '@tessera/trainers';

describe('metrics', () => {
  it('are registered and computed from prediction/label rows (-100 not scored)', () => {
    expect(registry.metric.list()).toEqual(
      expect.arrayContaining(['loss', 'perplexity', 'accuracy', 'f1', 'exact-match']),
    );
    const metrics = createMetrics(['perplexity', 'accuracy', 'f1', 'exact-match']);
    const batches = [
      { loss: 1, weight: 2, predictions: [[0], [1]], labels: [[0], [0]] },
      { loss: 2, weight: 2, predictions: [[1], [2], [-1]], labels: [[1], [2], [-100]] },
    ];
    for (const b of batches) for (const m of metrics) m.update(b);
    const out = Object.assign({}, ...metrics.map((m) => m.compute()));
    expect(out.loss).toBeCloseTo(1.5);
    expect(out.perplexity).toBeCloseTo(Math.exp(1.5));
    expect(out.accuracy).toBeCloseTo(3 / 4);
    // class 0: tp 1, fn 1 -> p 1, r .5, f1 .667; class 1: tp 1, fp 1 -> p .5, r 1, f1 .667; class 2: all 1.
    expect(out.precision_0).toBeCloseTo(1);
    expect(out.recall_0).toBeCloseTo(0.5);
    expect(out.f1_1).toBeCloseTo(2 / 3);
    expect(out.macro_f1).toBeCloseTo((2 / 3 + 2 / 3 + 1) / 3);
    expect(out.exact_match).toBeCloseTo(3 / 4);
  });

  it('exact match needs every scored token of a row', () => {
    const [m] = createMetrics(['exact-match']).filter((x) => x.name === 'exact-match');
    m!.update({
      loss: 0,
      weight: 1,
      predictions: [
        [1, 2, 9],
        [1, 2, 3],
      ],
      labels: [
        [1, 2, -100],
        [1, 2, 4],
      ],
    });
    expect(m!.compute().exact_match).toBe(0.5);
  });

  it('unknown metric names list the known ones', () => {
    expect(() => createMetrics(['acuracy'])).toThrow(/Unknown metric "acuracy".*Did you mean "accuracy"/s);
  });

  it('the plot is a self-contained SVG', () => {
    const svg = lineChartSvg('t', 'step', [
      {
        name: 'train loss',
        color: '#000',
        points: [
          { x: 1, y: 3 },
          { x: 2, y: 2 },
        ],
      },
    ]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('train loss');
  });
});
