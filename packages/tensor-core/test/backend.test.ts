import { afterAll, describe, expect, it } from 'vitest';
import { registerBackend, registry, tf, useBackend } from '@tessera/tensor-core';
import { registerCpuDerivedBackend } from '@tessera/kernels-cpu';

describe('backend selection', () => {
  afterAll(async () => {
    for (const name of ['fakegpu', 'fakefast', 'fakebroken']) registry.backend.unregister(name);
    await tf.setBackend('cpu');
  });

  it('auto picks cpu when nothing better is installed, and says why in one line', async () => {
    const lines: string[] = [];
    const choice = await useBackend('auto', { log: (l) => lines.push(l) });
    expect(choice.name).toBe('cpu');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tessera: backend auto -> cpu \(cpu: pure-JS reference, always available/);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('auto prefers higher priority, skips software GPUs and unavailable backends', async () => {
    registerCpuDerivedBackend('fakefast');
    registerBackend('fakegpu', () => undefined, {
      description: 'software-only gpu',
      priority: 30,
      isAvailable: () => ({ available: true, hardware: false, reason: 'only a software adapter (lavapipe)' }),
    });
    registerBackend('fakebroken', () => undefined, {
      description: 'not built',
      priority: 25,
      isAvailable: () => ({ available: false, reason: 'native addon not built (run npm run build:native)' }),
    });
    registerBackend('fakefast', () => undefined, {
      description: 'fast',
      priority: 20,
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
