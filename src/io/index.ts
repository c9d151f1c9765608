/** File formats for exchanging tensors with other tools (NumPy .npy, safetensors). */
export * from './npy';
export * from './safetensors';
