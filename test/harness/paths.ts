// Where the harness finds what scripts/setup.sh installed.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const binDir = join(repoRoot, ".cache", "bin");
export const motoVenv = join(repoRoot, ".cache", "moto-venv");

export function requireBinary(path: string): string {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run scripts/setup.sh first`);
  }
  return path;
}
