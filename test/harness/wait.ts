// Waiting on conditions in tests: poll a check until it passes, bounded in time.
import { setTimeout as delay } from "node:timers/promises";

export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
  message?: string;
}

/**
 * Calls `check` until it returns without throwing, and returns its value.
 * Fails with the last error once `timeoutMs` has passed.
 */
export async function eventually<T>(
  check: () => Promise<T> | T,
  options: EventuallyOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? lastError.message : String(lastError);
      throw new Error(`${options.message ?? "condition"} not met within ${timeoutMs} ms: ${detail}`, {
        cause: lastError,
      });
    }
    await delay(intervalMs);
  }
}
