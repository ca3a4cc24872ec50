// Where and how a benchmark ran, and reading the results files it left: shared by every part of
// the benchmark that writes results.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";

export interface TargetCheck {
  target: string;
  value: string;
  met: boolean;
}

/** Where and how a benchmark ran, recorded with its figures. */
export interface RunInfo {
  date: string;
  kubernetes: string;
  cpus: number;
  node: string;
  command: string;
  /** "build": the compiled dist/main.js with the image's node flags; "source": src/main.ts. */
  operator_entry?: "build" | "source";
  operator_node_options?: string;
  note?: string;
}

export function runInfo(
  kubernetes: string,
  options: {
    command: string;
    operatorEntry: "build" | "source";
    operatorNodeOptions?: string;
    note?: string;
  },
): RunInfo {
  return {
    date: new Date().toISOString(),
    kubernetes,
    cpus: availableParallelism(),
    node: process.version,
    command: options.command,
    operator_entry: options.operatorEntry,
    ...(options.operatorNodeOptions === undefined
      ? {}
      : { operator_node_options: options.operatorNodeOptions }),
    ...(options.note === undefined ? {} : { note: options.note }),
  };
}

/** A results file in `dir`, if that part of the benchmark ran there. */
export async function readResultFile<T>(dir: string, name: string): Promise<T | undefined> {
  const path = join(dir, name);
  return existsSync(path) ? (JSON.parse(await readFile(path, "utf8")) as T) : undefined;
}
