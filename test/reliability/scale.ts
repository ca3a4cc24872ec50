// How big the reliability scenarios run. The default ("ci") is the subset in `npm test`: fewer
// namespaces, shorter fault windows, slow scenarios skipped. `npm run test:reliability` sets
// RELIABILITY_SCALE=full and runs every scenario at its full size.
export type ScaleName = "ci" | "full";

export const scaleName: ScaleName = process.env.RELIABILITY_SCALE === "full" ? "full" : "ci";
export const isFull = scaleName === "full";

/** `ci` in the default test run, `full` under npm run test:reliability. */
export function byScale<T>(ci: T, full: T): T {
  return isFull ? full : ci;
}

/** node:test options for a scenario that runs only at full scale. */
export const fullScaleOnly = { skip: isFull ? false : "full scale only: npm run test:reliability" } as const;
