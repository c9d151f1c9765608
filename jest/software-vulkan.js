// Gives the tests a WebGPU adapter on machines without a GPU: Chromium (which CI installs for the browser
// tests) ships SwiftShader, a Vulkan driver on the CPU that Dawn accepts (Mesa's lavapipe 22.3 is
// rejected: "Vulkan shaderUniform*ArrayDynamicIndexing required"). Chosen only when the caller chose no
// Vulkan driver and no NVIDIA one is registered, and before onnxruntime loads: a process that failed to
// find an adapter once keeps failing. Needs the Vulkan loader (Debian's libvulkan1) to be found at all.
const fs = require('node:fs');

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d'];

function hasNvidiaIcd() {
  return ICD_DIRS.some((d) => {
    try {
      return fs.readdirSync(d).some((f) => /^nvidia/i.test(f));
    } catch {
      return false;
    }
  });
}

function useSoftwareVulkan(env = process.env) {
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES || !fs.existsSync(SWIFTSHADER_ICD) || hasNvidiaIcd())
    return;
  env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}

module.exports = { useSoftwareVulkan };
