// Go-style durations ("6h", "90m", "1h30m", "1.5h", "250ms") as the CRD's refreshInterval uses them.
// Accepts exactly what patterns.duration in crd.ts accepts; results are whole milliseconds.

import { patterns, refreshIntervalBounds } from "./crd.ts";
import { invalidInput, isInvalidInput } from "./invalid-input.ts";
import type { InvalidInput } from "./invalid-input.ts";

const unitMilliseconds = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
const wholeDuration = new RegExp(patterns.duration);
const component = /([0-9]+)(?:[.]([0-9]+))?(ms|s|m|h)/gy;
const example = "write it like 6h, 90m or 1h30m (units h, m, s, ms)";

/** Parses a duration to milliseconds; sub-millisecond parts are rounded to the nearest millisecond. */
export function parseDuration(text: string): number | InvalidInput {
  if (text === "") return invalidInput(`duration is empty; ${example}`);
  if (/^[0-9]+([.][0-9]+)?$/.test(text)) {
    return invalidInput(`duration "${text}" has no unit; write ${text}m or ${text}s, for example`);
  }
  if (!wholeDuration.test(text)) return invalidInput(`"${text}" is not a duration; ${example}`);

  let total = 0;
  for (const [, whole = "", fraction, unit] of text.matchAll(component)) {
    const scale = unitMilliseconds[unit as keyof typeof unitMilliseconds];
    total += Number(whole) * scale;
    if (fraction !== undefined) total += Math.round(Number(`0.${fraction}`) * scale);
  }
  if (!Number.isSafeInteger(total)) return invalidInput(`duration "${text}" is too long`);
  return total;
}

const minRefreshInterval = parseBound(refreshIntervalBounds.min);
const maxRefreshInterval = parseBound(refreshIntervalBounds.max);

/** Parses spec.refreshInterval and checks it lies within the range the operator supports. */
export function parseRefreshInterval(text: string): number | InvalidInput {
  const milliseconds = parseDuration(text);
  if (isInvalidInput(milliseconds)) return invalidInput(`refreshInterval: ${milliseconds.message}`);
  if (milliseconds < minRefreshInterval) {
    return invalidInput(`refreshInterval ${text} is shorter than the minimum ${refreshIntervalBounds.min}`);
  }
  if (milliseconds > maxRefreshInterval) {
    return invalidInput(`refreshInterval ${text} is longer than the maximum ${refreshIntervalBounds.max}`);
  }
  return milliseconds;
}

function parseBound(text: string): number {
  const milliseconds = parseDuration(text);
  if (isInvalidInput(milliseconds)) throw new Error(`refreshIntervalBounds: ${milliseconds.message}`);
  return milliseconds;
}
