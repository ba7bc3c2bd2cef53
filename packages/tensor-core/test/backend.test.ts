import { afterAll, describe, expect, it } from 'vitest';
import { registerBackend, registry, tf, useBackend } from '@tessera/tensor-core';
import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';

describe('backend selection', () => {
  afterAll(async () => {
    for (const name of ['fakegpu', 'fakefast', 'fakebroken']) registry.backend.unregister(name);
    await tf.setBackend('cpu');
  });

  it('auto picks the best installed backend (cpu at least) and says why in one line', async () => {
    const lines: string[] = [];
    const choice = await useBackend('auto', { log: (l) => lines.push(l) });
    // Whatever auto chose must be the highest-priority available one among those registered.
    const ranked = [];
    for (const e of registry.backend.entries()) {
      const meta = e.meta as { priority: number; isAvailable: () => { available: boolean; hardware?: boolean } };
      const a = await meta.isAvailable();
      if (a.available && a.hardware !== false) ranked.push({ name: e.name, priority: meta.priority });
    }
    ranked.sort((a, b) => b.priority - a.priority);
    expect(choice.name).toBe(ranked[0]!.name);
    expect(registry.backend.has('cpu')).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^tessera: backend auto -> ${choice.name} \\(${choice.name}: `));
    expect(tf.getBackend()).toBe(choice.name);
  });

  it('auto prefers higher priority, skips software GPUs and unavailable backends', async () => {
    registerCpuDerivedBackend('fakefast');
    registerBackend('fakegpu', () => undefined, {
      description: 'software-only gpu',
      priority: 36,
      isAvailable: () => ({ available: true, hardware: false, reason: 'only a software adapter (lavapipe)' }),
    });
    registerBackend('fakebroken', () => undefined, {
      description: 'not built',
      priority: 34,
      isAvailable: () => ({ available: false, reason: 'native addon not built (run npm run build:native)' }),
    });
    registerBackend('fakefast', () => undefined, {
      description: 'fast',
      priority: 32,
      isAvailable: () => ({ available: true, reason: 'addon loaded, 2 threads' }),
    });
    const lines: string[] = [];
    const choice = await useBackend('auto', { log: (l) => lines.push(l) });
    expect(choice.name).toBe('fakefast');
    expect(lines[0]).toContain('auto -> fakefast (fakefast: addon loaded, 2 threads');
    expect(lines[0]).toContain('fakegpu: skipped, only a software adapter (lavapipe) (ask for it by name to use it)');
    expect(lines[0]).toContain('fakebroken: native addon not built');
    await expect(useBackend('fakebroken', { log: () => {} })).rejects.toThrow(
      /not available here: native addon not built/,
    );
    await expect(useBackend('cpuu', { log: () => {} })).rejects.toThrow(/Unknown backend "cpuu".*Did you mean "cpu"/s);
    expect(() =>
      registerBackend('bad_name', () => undefined, {
        description: '',
        priority: 0,
        isAvailable: () => ({ available: true, reason: '' }),
      }),
    ).toThrow(/may not contain "_"/);
  });
});
