// Field readers for a kubeconfig's YAML. Each reads YAML nulls and "" as unset, as client-go does,
// and a refusal names the file, entry and field, never the value.

import { KubeConfigError } from "./kubeconfig-error.ts";

export type YamlMap = Readonly<Record<string, unknown>>;

/** A clusters/users/contexts entry and the file it came from (for relative paths and messages). */
export interface Entry {
  body: YamlMap;
  /** The same entry with YAML's own types (numbers, booleans), for an exec extension's config. */
  typed: YamlMap | undefined;
  file: string;
  where: string;
}

export function isMap(value: unknown): value is YamlMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** YAML nulls, which the failsafe schema leaves as text; client-go reads them, and "", as unset. */
const nullScalars = new Set(["", "~", "null", "Null", "NULL"]);

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "string" && nullScalars.has(value));
}

export function text(map: YamlMap, field: string, where: string): string | undefined {
  const value = map[field];
  if (isUnset(value)) return undefined;
  if (typeof value !== "string") throw new KubeConfigError(`${where}: ${field} is not a string`);
  return value;
}

export function flag(map: YamlMap, field: string, where: string): boolean {
  const value = text(map, field, where)?.toLowerCase();
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  throw new KubeConfigError(`${where}: ${field} is not true or false`);
}

export function section(map: YamlMap, field: string, where: string): YamlMap | undefined {
  const value = map[field];
  if (isUnset(value)) return undefined;
  if (!isMap(value)) throw new KubeConfigError(`${where}: ${field} is not a map`);
  return value;
}

/** A list field as it is, or none when it is missing or not a list (for the typed reading). */
export function entriesOrNone(map: YamlMap, field: string): readonly unknown[] {
  const value = map[field];
  return Array.isArray(value) ? (value as unknown[]) : [];
}

export function entries(map: YamlMap, field: string, where: string): readonly unknown[] {
  const value = map[field];
  if (isUnset(value)) return [];
  if (!Array.isArray(value)) throw new KubeConfigError(`${where}: ${field} is not a list`);
  return value as unknown[];
}
