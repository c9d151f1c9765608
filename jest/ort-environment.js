// onnxruntime-node returns typed arrays created in Node's main realm; jest's vm context has its own
// constructors, so `instanceof Float32Array` fails inside ORT's Tensor checks. Share the outer ones.
const { TestEnvironment } = require('jest-environment-node');
const { useSoftwareVulkan } = require('./software-vulkan');

useSoftwareVulkan();

const SHARED = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray',
  'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array',
  'BigInt64Array', 'BigUint64Array', 'Buffer',
];

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) if (globalThis[name]) this.global[name] = globalThis[name];
  }
}

module.exports = OrtEnvironment;
