import { registry, TesseraError, tf } from '@tessera/tensor-core';
import '@tessera/kernels-cpu';

const prepared = new Set<string>();

/**
 * Makes `name` the active tfjs backend. A backend registered with Tessera's registry
 * (registerBackend) gets its factory run once, as useBackend would; a backend
 * registered only with tfjs (registerCpuDerivedBackend, a test backend) is used as is.
 */
export async function activate(name: string): Promise<void> {
  if (!prepared.has(name)) {
    if (registry.backend.has(name)) await (registry.backend.get(name).factory as () => unknown)();
    if (!tf.findBackendFactory(name) && !tf.findBackend(name)) {
      const known = [...new Set([...registry.backend.list(), ...Object.keys(tf.engine().registryFactory)])].sort();
      throw new TesseraError(
        `Backend "${name}" is not registered. Known backends: ${known.join(', ') || 'none'}. ` +
          'Import the package that registers it first (or pass its module to runConformance as `imports`).',
      );
    }
    prepared.add(name);
  }
  if (tf.getBackend() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new TesseraError(`tfjs could not initialise backend "${name}".`);
  }
  await tf.ready();
}

/** Live tensors and the backend's own buffers: a kernel that leaks shows up in one of them. */
export function memorySnapshot(): { tensors: number; buffers: number } {
  return { tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() };
}
