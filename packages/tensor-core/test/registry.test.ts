import { describe, expect, it } from 'vitest';
import {
  DuplicatePluginError,
  PLUGIN_KINDS,
  PluginOptionsError,
  UnknownPluginError,
  registry,
  z,
} from '@tessera/tensor-core';

describe('registry', () => {
  it('has every plugin kind of the design', () => {
    expect([...PLUGIN_KINDS]).toEqual([
      'backend',
      'op',
      'model',
      'layer',
      'optimizer',
      'schedule',
      'tokenizer',
      'dataset',
      'preprocess',
      'objective',
      'metric',
      'callback',
      'adapter',
    ]);
    for (const kind of PLUGIN_KINDS) expect(registry[kind].kind).toBe(kind);
  });

  it('registers, lists, creates with validated options', () => {
    const schema = z.object({ lr: z.number().positive(), momentum: z.number().default(0) }).strict();
    registry.optimizer.register('test-sgd', (opts: { lr: number; momentum: number }) => ({ kind: 'sgd', ...opts }), {
      description: 'test',
      options: schema,
    });
    expect(registry.optimizer.has('test-sgd')).toBe(true);
    expect(registry.optimizer.list()).toContain('test-sgd');
    expect(registry.optimizer.create('test-sgd', { lr: 0.1 })).toEqual({ kind: 'sgd', lr: 0.1, momentum: 0 });
    expect(() => registry.optimizer.create('test-sgd', { lr: -1, mom: 2 })).toThrow(PluginOptionsError);
    try {
      registry.optimizer.create('test-sgd', { lr: -1, mom: 2 });
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toContain('Invalid options for optimizer "test-sgd"');
      expect(message).toContain('lr: found -1; expected a number > 0');
      expect(message).toContain('mom: found 2; expected no such key here');
    }
    registry.optimizer.unregister('test-sgd');
    expect(registry.optimizer.has('test-sgd')).toBe(false);
  });

  it('refuses a taken name unless replace is asked for', () => {
    registry.metric.register('test-acc', () => 1, { package: 'pkg-a' });
    expect(() => registry.metric.register('test-acc', () => 2)).toThrow(DuplicatePluginError);
    expect(() => registry.metric.register('test-acc', () => 2)).toThrow(/already registered by pkg-a/);
    registry.metric.register('test-acc', () => 2, {}, { replace: true });
    expect(registry.metric.create('test-acc')).toBe(2);
    registry.metric.unregister('test-acc');
  });

  it('an unknown name lists the known names and the closest match', () => {
    registry.schedule.register('test-cosine', () => 0);
    registry.schedule.register('test-linear', () => 0);
    let message = '';
    try {
      registry.schedule.create('test-cosin');
    } catch (err) {
      expect(err).toBeInstanceOf(UnknownPluginError);
      message = (err as Error).message;
    }
    expect(message).toContain('Unknown schedule "test-cosin"');
    expect(message).toContain('Did you mean "test-cosine"?');
    expect(message).toContain('test-cosine, test-linear');
    expect(() => registry.schedule.get('zzzzzzzzzzzz')).toThrow(/^(?!.*Did you mean)/s);
    registry.schedule.unregister('test-cosine');
    registry.schedule.unregister('test-linear');
  });

  it('rejects empty names and non-function factories', () => {
    expect(() => registry.layer.register('', () => 0)).toThrow(/non-empty name/);
    expect(() => registry.layer.register('x', 5 as never)).toThrow(/factory function/);
  });

  it('the fused ops are registered as op plugins', () => {
    expect(registry.op.list()).toEqual(
      expect.arrayContaining([
        'TesseraAdamW',
        'TesseraAttention',
        'TesseraGelu',
        'TesseraLayerNorm',
        'TesseraRmsNorm',
        'TesseraSoftmaxCrossEntropy',
      ]),
    );
  });

  it('loadPlugins imports packages and explains a missing one', async () => {
    await registry.loadPlugins(['@tessera/kernels-cpu']);
    expect(registry.backend.has('cpu')).toBe(true);
    await expect(registry.loadPlugins(['@tessera/does-not-exist'])).rejects.toThrow(
      /Could not load plugin package "@tessera\/does-not-exist" \(plugins\[0\]\).*npm install @tessera\/does-not-exist/s,
    );
  });
});
