/** Messages between WorkerTrainingSession (main thread) and its worker, and the transfer-list helper. */

/** A method call posted to the worker. */
export interface WorkerRequest {
  id: number;
  method: string;
  args: unknown[];
}

/** The worker's answer to one request. */
export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string; hint?: string } };

/**
 * ArrayBuffers of the typed arrays inside `value` that can be moved instead of copied: only buffers a
 * single view covers completely (moving a shared or pooled buffer would detach unrelated data).
 */
export function transferList(value: unknown): ArrayBuffer[] {
  const views = new Map<ArrayBuffer, number>();
  const whole = new Set<ArrayBuffer>();
  const seen = new Set<unknown>();
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (ArrayBuffer.isView(v)) {
      const buf = v.buffer;
      if (!(buf instanceof ArrayBuffer)) return;
      views.set(buf, (views.get(buf) ?? 0) + 1);
      if (v.byteOffset === 0 && v.byteLength === buf.byteLength) whole.add(buf);
      return;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) visit(child);
  };
  visit(value);
  return [...whole].filter((b) => views.get(b) === 1);
}
