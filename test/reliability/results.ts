// Records each reliability scenario's outcome and figures as soon as it finishes: in
// test/reliability/results.json and docs/reliability.md at full scale, under .cache/reliability/
// at CI scale (so that `npm test` never rewrites the published figures).
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { format, resolveConfig } from "prettier";
import { repoRoot } from "../harness/paths.ts";
import { renderReport } from "./report.ts";
import { scaleName, type ScaleName } from "./scale.ts";

export type Figure = number | string | boolean;
export type Figures = Record<string, Figure>;

export interface ScenarioResult {
  /** Sort key and short reference: F (faults), B (bad input), S (security), L (leak scans), e.g. "F1". */
  id: string;
  name: string;
  passed: boolean;
  scale: ScaleName;
  seconds: number;
  figures: Figures;
  /** The assertion that failed, when it failed. */
  error?: string;
  finishedAt: string;
}

export const resultsPath =
  scaleName === "full"
    ? join(repoRoot, "test", "reliability", "results.json")
    : join(repoRoot, ".cache", "reliability", "results.json");
export const reportPath =
  scaleName === "full"
    ? join(repoRoot, "docs", "reliability.md")
    : join(repoRoot, ".cache", "reliability", "reliability.md");

export function readResults(path = resultsPath): ScenarioResult[] {
  if (!existsSync(path)) return [];
  return JSON.parse(readFileSync(path, "utf8")) as ScenarioResult[];
}

function writeAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/** Faults, bad input, security, then the leak scans that close each file. */
const groupOrder = ["F", "B", "S", "L"];

/** Formatted as `prettier --check` expects, since both files are committed at full scale. */
async function formatted(path: string, text: string): Promise<string> {
  const options = (await resolveConfig(path)) ?? {};
  return format(text, { ...options, filepath: path });
}

/** Replaces the entry of the same id, keeps the others, and re-renders the report. */
export async function recordResult(result: ScenarioResult): Promise<void> {
  const results = readResults().filter((r) => r.id !== result.id);
  results.push(result);
  results.sort(
    (a, b) =>
      groupOrder.indexOf(a.id.charAt(0)) - groupOrder.indexOf(b.id.charAt(0)) ||
      a.id.localeCompare(b.id, "en", { numeric: true }),
  );
  writeAtomically(resultsPath, await formatted(resultsPath, JSON.stringify(results, null, 2)));
  writeAtomically(reportPath, await formatted(reportPath, renderReport(results)));
}

function oneLine(err: Error): string {
  return err.message.split("\n")[0]?.slice(0, 300) ?? "";
}

/**
 * Runs one scenario's body with a figures object it fills in as it measures, and records the
 * outcome whether it passes or fails (a failure keeps the figures measured so far).
 */
export async function scenario(
  id: string,
  name: string,
  body: (figures: Figures) => Promise<void>,
): Promise<void> {
  const figures: Figures = {};
  const started = Date.now();
  let error: Error | undefined;
  try {
    await body(figures);
  } catch (err) {
    error = err instanceof Error ? err : new Error(`non-Error thrown: ${typeof err}`);
  }
  const result: ScenarioResult = {
    id,
    name,
    passed: error === undefined,
    scale: scaleName,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    figures,
    finishedAt: new Date().toISOString(),
  };
  if (error !== undefined) result.error = oneLine(error);
  await recordResult(result);
  if (error !== undefined) throw error;
}

/** Keeps captured operator logs under .cache/reliability/logs/ for reading after a failure. */
export function saveLogs(name: string, lines: readonly string[]): void {
  writeAtomically(join(repoRoot, ".cache", "reliability", "logs", `${name}.log`), `${lines.join("\n")}\n`);
}

/** Seconds between two clock readings (ms), to one decimal. */
export function secondsBetween(from: number, to: number): number {
  return Math.round((to - from) / 100) / 10;
}
