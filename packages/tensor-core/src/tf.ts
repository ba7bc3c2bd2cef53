import './engine.js';

export * as tf from '@tensorflow/tfjs-core';
export type {
  DataType,
  NamedTensorMap,
  Rank,
  Scalar,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  TensorInfo,
  Variable,
} from '@tensorflow/tfjs-core';
