import { TesseraError, gelu, tf } from '@tessera/tensor-core';

/** Activation names as HF configs spell them. */
export const ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu', 'silu', 'tanh'] as const;

/** The activation by HF name: "gelu" is the exact erf form, "gelu_new" the tanh form GPT-2 uses. */
export function activation(name: string): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu':
      return (x) => gelu(x, 'none');
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return (x) => gelu(x, 'tanh');
    case 'relu':
      return (x) => tf.relu(x);
    case 'silu':
      return (x) => tf.mul(x, tf.sigmoid(x));
    case 'tanh':
      return (x) => tf.tanh(x);
    default:
      throw new TesseraError(`Unknown activation "${name}". Known: ${ACTIVATIONS.join(', ')}.`);
  }
}
