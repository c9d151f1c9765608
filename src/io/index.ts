/** File formats for exchanging tensors with other tools (NumPy .npy). */
export * from './npy';
