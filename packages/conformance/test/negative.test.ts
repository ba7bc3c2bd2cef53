import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@tessera/tensor-core';
import { type CaseResult, formatTable, runConformance } from '@tessera/conformance';
import './fixtures/broken-backends.js';

// Each broken backend is cpu with one plausible bug (see fixtures/broken-backends.js).
// The suite must fail exactly the cases that exercise the bug, and say what is wrong.
async function failures(backend: string): Promise<{ failed: CaseResult[]; table: string }> {
  const r = await runConformance({ backend, levels: [2] });
  expect(r.pass).toBe(false);
  return { failed: r.levels[0]!.cases.filter((c) => !c.pass), table: formatTable(r, { onlyFailures: true }) };
}

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

describe('the suite catches what it claims to catch', () => {
  it('softmax off by 0.02%: every softmax case fails, nothing else', async () => {
    const { failed, table } = await failures('offsoftmax');
    expect(new Set(failed.map((c) => c.group))).toEqual(new Set(['softmax']));
    expect(failed.length).toBe(5);
    const c = failed.find((x) => x.name === 'softmax/[3,7]')!;
    expect(c.maxRelErr).toBeCloseTo(2e-4, 5);
    expect(c.message).toMatch(/^y: max abs err .* at \[\d+, \d+\] \(got .*, expected .*\), rel 2\.00e-4/);
    expect(table).toContain('softmax/[3,7]');
    expect(table).toMatch(/FAIL/);
  });

  it('a fused-op gradient with the wrong sign: the layer-norm cases fail on dx only', async () => {
    const { failed } = await failures('wronggrad');
    expect(new Set(failed.map((c) => c.group))).toEqual(new Set(['layerNorm']));
    // [1,1] has dx = 0 mathematically, so its sign cannot show: the other 8 variants fail.
    expect(failed.length).toBe(8);
    for (const c of failed) {
      expect(c.message).toMatch(/^dx: /);
      expect(c.message).not.toMatch(/dgamma|dbeta/);
      expect(c.maxRelErr).toBeCloseTo(2, 3);
    }
  });

  it('attention that ignores the mask: exactly the masked cases fail', async () => {
    const { failed } = await failures('nomask');
    expect(failed.map((c) => c.name).sort()).toEqual([
      'attention/causal + padding mask [3,2,6,4]',
      'attention/causal + padding mask, 130 tokens [2,1,130,8]',
      'attention/padding mask [2,2,4,8], second sequence fully masked',
      'packed-attention/causal + padding mask, 66 tokens [2,66,3·1·16]',
      'packed-attention/padding mask, not causal [2,9,3·2·8]',
      'seq-attention/causal + padding mask [3,2,6,4]',
      'seq-attention/causal + padding mask, 130 tokens [2,1,130,8]',
      'seq-attention/padding mask [2,2,4,8], second sequence fully masked',
    ]);
    expect(failed[0]!.message).toMatch(/^y: max abs err/);
  });

  it('kernels that leak: the cases running them fail and name the kernel', async () => {
    const { failed } = await failures('leaky');
    expect(new Set(failed.map((c) => c.group))).toEqual(new Set(['softmax', 'gelu']));
    const softmax = failed.find((c) => c.group === 'softmax')!;
    expect(softmax.message).toMatch(/internal memory leak .* after running 'Softmax'/);
    expect(softmax.message).toMatch(/leaked \d+ tensor\(s\) and [1-9]\d* backend buffer\(s\)/);
    const gelu = failed.find((c) => c.group === 'gelu')!;
    expect(gelu.message).toMatch(/after running 'TesseraGelu'/);
  });
});
