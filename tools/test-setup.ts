// IS_TEST makes the tfjs engine check every kernel for leaked data ids.
import { tf } from '@tessera/tensor-core';

tf.env().set('IS_TEST', true);
