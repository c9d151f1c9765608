/** UTF-8 helpers shared by the codec (works in Node and browsers). */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function stringToBytes(s: string): Uint8Array {
  return encoder.encode(s);
}

export function bytesToString(b: Uint8Array): string {
  return decoder.decode(b);
}
