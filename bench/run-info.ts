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

/**
 * Characters in the password of the ECR tokens the benchmark's AWS stand-in hands out. ECR's run to
 * 2,000–2,700 characters (moto's own are 23), and a pull Secret carries the password twice (plain
 * and in `auth`), so a Secret of the size ECR's make is about 7.5 KB.
 */
export const ecrPasswordLength = 2400;

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
  /** Characters in the password of the ECR tokens the AWS stand-in handed out; absent: moto's own. */
  ecr_password_chars?: number;
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
    ecr_password_chars: ecrPasswordLength,
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
