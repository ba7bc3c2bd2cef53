import { beforeAll, describe, expect, it } from 'vitest';
import { Module, ModuleList, type Parameter, Rng, StateDictError, tf, useBackend } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';

class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(i: number, o: number, rng: Rng) {
    super();
    this.weight = this.registerParameter('weight', rng.normalTensor([i, o]));
    this.bias = this.registerParameter('bias', tf.zeros([o]));
  }
}

class Net extends Module {
  readonly layers: ModuleList<Linear>;
  readonly scale: Parameter;
  constructor(rng: Rng) {
    super();
    this.layers = this.registerModule('h', new ModuleList([new Linear(3, 4, rng), new Linear(4, 2, rng)]));
    this.scale = this.registerParameter('scale', tf.ones([2]), { trainable: false });
  }
}

beforeAll(async () => {
  await useBackend('cpu', { log: () => {} });
});

describe('Module', () => {
  it('names parameters by dotted path and filters trainable ones', () => {
    const net = new Net(new Rng(1));
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      'scale',
      'h.0.weight',
      'h.0.bias',
      'h.1.weight',
      'h.1.bias',
    ]);
    expect(net.parameters({ trainableOnly: true })).toHaveLength(4);
    expect(net.parameterCount()).toBe(2 + 12 + 4 + 8 + 2);
    expect(net.namedModules().map(([n]) => n)).toEqual(['', 'h', 'h.0', 'h.1']);
    net.dispose();
  });

  it('attaches and detaches children from outside, and freezes parameters', () => {
    const net = new Net(new Rng(1));
    const extra = net.layers.items[0]!.addModule('extra', new Linear(2, 2, new Rng(2)));
    expect(net.namedParameters().map(([n]) => n)).toContain('h.0.extra.weight');
    expect(() => net.layers.items[0]!.addModule('extra', extra)).toThrow(/already has a member/);
    for (const p of net.parameters()) p.trainable = false;
    extra.weight.trainable = true;
    expect(net.namedParameters({ trainableOnly: true }).map(([n]) => n)).toEqual(['h.0.extra.weight']);
    expect(extra.weight.variable.trainable).toBe(true);
    expect(net.layers.items[0]!.removeModule('extra')).toBe(true);
    expect(net.namedParameters().map(([n]) => n)).not.toContain('h.0.extra.weight');
    extra.dispose();
    net.dispose();
  });

  it('switches train/eval mode through the whole tree', () => {
    const net = new Net(new Rng(1));
    expect(net.layers.items[1]!.training).toBe(true);
    net.eval();
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    net.train();
    expect(net.layers.items[0]!.training).toBe(true);
    net.dispose();
  });

  it('round-trips a state dict between two instances', () => {
    const a = new Net(new Rng(1));
    const b = new Net(new Rng(2));
    b.loadStateDict(a.stateDict());
    for (const [name, t] of Object.entries(a.stateDict())) {
      expect(Array.from(b.stateDict()[name]!.dataSync())).toEqual(Array.from(t.dataSync()));
    }
    a.dispose();
    b.dispose();
  });

  it('reports every missing, unexpected and mis-shaped entry, and assigns nothing', () => {
    const net = new Net(new Rng(1));
    const before = Array.from(net.layers.items[0]!.weight.value.dataSync());
    const state = { ...net.stateDict() };
    const extra = tf.zeros([1]);
    const wrongShape = tf.zeros([4, 3]);
    const wrongDtype = tf.zeros([4], 'int32');
    delete state['h.1.bias'];
    delete state.scale;
    state['h.0.weight'] = wrongShape;
    state['h.0.bias'] = wrongDtype;
    state['h.2.weight'] = extra;
    let error: StateDictError | undefined;
    try {
      net.loadStateDict(state);
    } catch (err) {
      error = err as StateDictError;
    }
    expect(error).toBeInstanceOf(StateDictError);
    expect(error!.problems.missing.sort()).toEqual(['h.1.bias', 'scale']);
    expect(error!.problems.unexpected).toEqual(['h.2.weight']);
    expect(error!.problems.mismatched).toEqual([
      'h.0.weight: expected [3, 4] float32, got [4, 3] float32',
      'h.0.bias: expected [4] float32, got [4] int32',
    ]);
    expect(error!.message).toContain('missing (2): ');
    expect(Array.from(net.layers.items[0]!.weight.value.dataSync())).toEqual(before);
    tf.dispose([extra, wrongShape, wrongDtype]);
    net.dispose();
  });

  it('non-strict loading returns missing/unexpected names and loads the rest', () => {
    const a = new Net(new Rng(1));
    const b = new Net(new Rng(2));
    const state = { ...a.stateDict() };
    delete state.scale;
    const extra = tf.zeros([1]);
    const problems = b.loadStateDict({ ...state, extra }, { strict: false });
    expect(problems).toEqual({ missing: ['scale'], unexpected: ['extra'], mismatched: [] });
    expect(Array.from(b.stateDict()['h.1.weight']!.dataSync())).toEqual(
      Array.from(a.stateDict()['h.1.weight']!.dataSync()),
    );
    tf.dispose(extra);
    a.dispose();
    b.dispose();
  });

  it('rejects bad and duplicate member names', () => {
    class Bad extends Module {
      constructor() {
        super();
        this.registerParameter('w', tf.zeros([1]));
        this.registerParameter('w', tf.zeros([1]));
      }
    }
    expect(() => new Bad()).toThrow(/already has a member named "w"/);
    class Dotted extends Module {
      constructor() {
        super();
        this.registerParameter('a.b', tf.zeros([1]));
      }
    }
    expect(() => new Dotted()).toThrow(/must be letters, digits/);
  });
});

describe('Module memory', () => {
  it('creating and disposing a module leaves no tensor behind', async () => {
    await useBackend('cpu', { log: () => {} });
    const before = tf.memory().numTensors;
    const net = new Net(new Rng(1));
    expect(tf.memory().numTensors).toBe(before + 5);
    net.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
