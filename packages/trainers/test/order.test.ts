import { describe, expect, it } from 'vitest';
import { ExampleOrder, type TrainerState } from '@tessera/trainers';

const examples = (n: number) => ({ length: n, get: (i: number) => i });
const state = (): TrainerState => ({ step: 0, epoch: 0, position: 0, skippedBatches: 0 }) as unknown as TrainerState;

describe('ExampleOrder across ranks', () => {
  it('the ranks of one micro-step together take what one process with the whole batch takes', () => {
    const alone = new ExampleOrder(examples(40), 9);
    const ranks = [0, 1, 2, 3].map((rank) => new ExampleOrder(examples(40), 9, { rank, size: 4 }));
    const s1 = state();
    const s4 = ranks.map(() => state());
    for (let step = 0; step < 5; step++) {
      const whole = alone.next(s1, 8).indices;
      const parts = ranks.map((o, r) => o.next(s4[r]!, 2).indices);
      // Rank r holds the r-th contiguous share, in order.
      expect(parts.flat()).toEqual(whole);
      expect(s4.every((s) => s.position === s1.position)).toBe(true);
    }
  });

  it('splits a short epoch tail evenly; a rank left without examples repeats one, counted as padded', () => {
    const ranks = [0, 1, 2].map((rank) => new ExampleOrder(examples(7), 1, { rank, size: 3 }));
    const s = ranks.map(() => state());
    const first = ranks.map((o, r) => o.next(s[r]!, 2));
    expect(first.map((b) => b.indices.length)).toEqual([2, 2, 2]);
    // One example left for three ranks.
    const tail = ranks.map((o, r) => o.next(s[r]!, 2));
    expect(tail.map((b) => b.padded)).toEqual([1, 1, 0]);
    expect(tail[2]!.indices).toHaveLength(1);
    expect(new Set([...first.flatMap((b) => b.indices), ...tail[2]!.indices]).size).toBe(7);
    // The next call starts epoch 1 on every rank.
    const next = ranks.map((o, r) => o.next(s[r]!, 2));
    expect(next.every((b) => b.epoch === 1)).toBe(true);
  });

  it('a position written by 2 ranks continues on 1 (resume on another world size)', () => {
    const two = [0, 1].map((rank) => new ExampleOrder(examples(30), 4, { rank, size: 2 }));
    const s = [state(), state()];
    for (let i = 0; i < 3; i++) for (const [r, o] of two.entries()) o.next(s[r]!, 3);
    const one = new ExampleOrder(examples(30), 4);
    const reference = new ExampleOrder(examples(30), 4);
    const sRef = state();
    for (let i = 0; i < 3; i++) reference.next(sRef, 6);
    const resumed = { ...s[0]! };
    expect(one.next(resumed, 6).indices).toEqual(reference.next(sRef, 6).indices);
  });
});
