// The caching allocator (native/allocator.cc) against the fake device of native/hosttest.cc:
// the same C++ the addon runs over cudaMalloc, so these hold on the GPU too.
import { describe, expect, it } from 'vitest';
import { MiB, runAllocator } from './helpers.js';

const last = (steps: ReturnType<typeof runAllocator>) => steps[steps.length - 1]!;
const byName = (steps: ReturnType<typeof runAllocator>, name: string) =>
  steps.find((s) => s.name === name && s.op === 'alloc')!;

describe('caching allocator (fake device)', () => {
  it('rounds requests up to 512 B blocks', () => {
    const s = runAllocator('alloc a 0\nalloc b 1\nalloc c 512\nalloc d 513\nalloc e 1000\n');
    expect(s.map((x) => x.size)).toEqual([512, 512, 512, 1024, 1024]);
  });

  it('packs small requests into one 2 MiB segment and hands out neighbouring blocks', () => {
    const s = runAllocator('alloc a 100\nalloc b 700\nalloc c 4096\nstats\n');
    const a = byName(s, 'a');
    const b = byName(s, 'b');
    const c = byName(s, 'c');
    expect(b.address).toBe(a.address! + 512);
    expect(c.address).toBe(b.address! + 1024);
    const st = last(s);
    expect(st.deviceMallocs).toBe(1);
    expect(st.reservedBytes).toBe(2 * MiB);
    expect(st.allocatedBytes).toBe(512 + 1024 + 4096);
    expect(st.requestedBytes).toBe(100 + 700 + 4096);
    expect(st.splits).toBe(3);
    // The rest of the segment is one cached free block.
    expect(st.cachedBlocks).toBe(1);
    expect(st.activeBlocks).toBe(3);
  });

  it('reuses freed blocks (cache hits, no new cudaMalloc)', () => {
    const s = runAllocator('alloc a 3000\nfree a\nalloc b 3000\nstats\n');
    expect(byName(s, 'b').address).toBe(byName(s, 'a').address);
    const st = last(s);
    expect(st.deviceMallocs).toBe(1);
    expect(st.allocations).toBe(2);
    expect(st.cacheHits).toBe(1); // the second allocation; the first split a fresh segment
  });

  it('coalesces a freed block with free neighbours on both sides', () => {
    const s = runAllocator(
      [
        'alloc a 1024',
        'alloc b 1024',
        'alloc c 1024',
        'alloc guard 1024', // keeps c's right neighbour allocated
        'free a',
        'free c',
        'free b', // merges with a (left) and c (right)
        'alloc big 3072', // fits exactly into a+b+c
        'stats',
      ].join('\n'),
    );
    expect(byName(s, 'big').address).toBe(byName(s, 'a').address);
    expect(byName(s, 'big').size).toBe(3072);
    const st = last(s);
    expect(st.merges).toBeGreaterThanOrEqual(2);
    expect(st.deviceMallocs).toBe(1);
  });

  it('gives 1-10 MiB requests a 20 MiB segment and splits it; larger ones a 2 MiB-rounded segment', () => {
    const s = runAllocator(`alloc a ${5 * MiB}\nalloc b ${3 * MiB}\nstats\nalloc big ${13 * MiB}\nstats\n`);
    const first = s[2]!;
    expect(first.reservedBytes).toBe(20 * MiB); // a and b share one 20 MiB segment
    expect(first.deviceMallocs).toBe(1);
    expect(byName(s, 'b').address).toBe(byName(s, 'a').address! + 5 * MiB);
    const second = last(s);
    // 13 MiB does not fit the 12 MiB left of the first segment; >= 10 MiB rounds to 2 MiB: 14 MiB.
    expect(second.reservedBytes).toBe(20 * MiB + 14 * MiB);
    expect(second.deviceMallocs).toBe(2);
  });

  it('does not split a large block when 1 MiB or less would be left over', () => {
    const s = runAllocator(`alloc a ${12 * MiB}\nfree a\nalloc b ${11 * MiB + 512}\nstats\n`);
    expect(byName(s, 'b').address).toBe(byName(s, 'a').address);
    expect(byName(s, 'b').size).toBe(12 * MiB); // the whole block: the ~1 MiB rest is not worth a split
    expect(last(s).splits).toBe(0);
  });

  it('keeps small and large requests in separate pools', () => {
    // A free 20 MiB large segment does not serve a small request: small ones get their own 2 MiB.
    const s = runAllocator(`alloc a ${5 * MiB}\nfree a\nalloc s 1000\nstats\n`);
    const st = last(s);
    expect(st.deviceMallocs).toBe(2);
    expect(st.reservedBytes).toBe(22 * MiB);
  });

  it('frees a cached segment and retries when the device is out of memory', () => {
    // A wholly free 20 MiB segment sits in the large pool; a small request needs a new 2 MiB
    // segment, which does not fit in 21 MiB: the cached segment goes back, then it fits.
    const s = runAllocator([`device ${21 * MiB}`, `alloc a ${5 * MiB}`, 'free a', 'alloc s 1000', 'stats'].join('\n'));
    expect(byName(s, 's').ok).toBe(true);
    const st = last(s);
    expect(st.oomRetries).toBe(1);
    expect(st.deviceFrees).toBe(1);
    expect(st.deviceMallocCalls).toBe(3); // the first segment, the failed try, the retry
    expect(st.deviceMallocs).toBe(2);
    expect(st.reservedBytes).toBe(2 * MiB);
    expect(st.ooms).toBe(0);
  });

  it('frees every cached segment as a second resort', () => {
    // Two small cached segments (2 MiB each) are each too small for the 12 MiB request on
    // their own: the first resort finds nothing, the second frees both.
    const s = runAllocator(
      [
        `device ${14 * MiB}`,
        `alloc s1 ${MiB}`,
        `alloc s2 ${MiB}`, // the rest of s1's 2 MiB segment
        `alloc s3 ${MiB}`,
        'free s1',
        'free s2',
        'free s3',
        `alloc big ${12 * MiB}`,
        'stats',
      ].join('\n'),
    );
    expect(byName(s, 'big').ok).toBe(true);
    const st = last(s);
    expect(st.deviceFrees).toBe(2);
    expect(st.segments).toBe(1);
    expect(st.oomRetries).toBeGreaterThanOrEqual(1);
  });

  it('reports an allocation that fails after every retry, and says what to do', () => {
    const s = runAllocator([`device ${16 * MiB}`, `alloc a ${30 * MiB}`, 'stats'].join('\n'));
    const a = byName(s, 'a');
    expect(a.ok).toBe(false);
    expect(a.error).toMatch(/out of device memory: asked for 31457280 B/);
    expect(a.error).toMatch(/Dispose tensors/);
    expect(last(s).ooms).toBe(1);
    expect(last(s).reservedBytes).toBe(0);
  });

  it('tracks peaks and returns only wholly free segments on emptyCache', () => {
    const s = runAllocator(
      [
        `alloc a ${4 * MiB}`, // 20 MiB segment, 16 MiB of it left free
        `alloc b ${17 * MiB}`, // too big for that rest: its own 18 MiB segment
        'free a',
        'stats',
        'empty',
        'stats',
        'free b',
        'empty',
        'stats',
      ].join('\n'),
    );
    const [beforeEmpty, afterEmpty, end] = s.filter((x) => x.op === 'stats');
    // b's 1 MiB rest is not split off, so b's block (what "allocated" counts) is 18 MiB.
    expect(beforeEmpty!.peakAllocatedBytes).toBe(22 * MiB);
    expect(beforeEmpty!.allocatedBytes).toBe(18 * MiB);
    expect(beforeEmpty!.requestedBytes).toBe(17 * MiB);
    expect(afterEmpty!.reservedBytes).toBe(18 * MiB); // a's segment went back, b's is in use
    expect(afterEmpty!.deviceFrees).toBe(1);
    expect(end!.reservedBytes).toBe(0);
    expect(end!.segments).toBe(0);
    expect(end!.peakReservedBytes).toBe(38 * MiB);
    expect(end!.deviceUsed).toBe(0);
  });

  it('refuses to free what it did not hand out', () => {
    const s = runAllocator('alloc a 10\nfree a\nfree a\nfree nothing\n');
    expect(s.slice(1).map((x) => x.ok)).toEqual([true, false, false]);
  });
});
