// Decides which namespaces an ECRPullSecret targets:
// (listed in `namespaces` OR selected by `namespaceSelector`) AND NOT listed in `excludeNamespaces`.
// Matchers are compiled once per spec because they run against every namespace in the cluster.

import picomatch from "picomatch";
import { patterns } from "./crd.ts";
import { invalidInput, isInvalidInput } from "./invalid-input.ts";
import type { InvalidInput } from "./invalid-input.ts";
import { compileLabelSelector } from "./label-selector.ts";
import type { Labels } from "./label-selector.ts";
import type { ECRPullSecretSpec } from "./types.ts";

export interface NamespaceInfo {
  readonly name: string;
  readonly labels?: Labels | undefined;
}

export type NamespaceMatcher = (namespace: NamespaceInfo) => boolean;

export type NamespaceTargets = Pick<
  ECRPullSecretSpec,
  "namespaces" | "namespaceSelector" | "excludeNamespaces"
>;

type NameMatcher = (name: string) => boolean;

const namespaceGlob = new RegExp(patterns.namespaceGlob);
const globCharacters = /[*?[]/;
// posix: `[!a]` negates as in shells (picomatch reads `!` literally otherwise);
// debug: an unusable glob such as `[z-a]` throws instead of silently matching nothing.
const globOptions = { posix: true, strictBrackets: true, debug: true } as const;

export function compileNamespaceMatcher(spec: NamespaceTargets): NamespaceMatcher | InvalidInput {
  const listed = compileNamePatterns("namespaces", spec.namespaces ?? []);
  if (isInvalidInput(listed)) return listed;
  const excluded = compileNamePatterns("excludeNamespaces", spec.excludeNamespaces ?? []);
  if (isInvalidInput(excluded)) return excluded;
  const selected = compileLabelSelector(spec.namespaceSelector);
  if (isInvalidInput(selected)) {
    return invalidInput(`namespaceSelector: ${selected.message}`);
  }
  return (namespace) => (listed(namespace.name) || selected(namespace.labels)) && !excluded(namespace.name);
}

function compileNamePatterns(field: string, items: readonly string[]): NameMatcher | InvalidInput {
  const exact = new Set<string>();
  const globs: NameMatcher[] = [];
  for (const [index, item] of items.entries()) {
    if (item.length > 63 || !namespaceGlob.test(item)) {
      return invalidInput(
        `${field}[${index}] "${item}" is not a namespace name or glob: ` +
          'use lower-case letters, digits, "-", "*", "?" and bracket expressions such as [a-c] or [!a-c]',
      );
    }
    if (!globCharacters.test(item)) {
      exact.add(item);
      continue;
    }
    try {
      globs.push(picomatch(item, globOptions));
    } catch (error) {
      // picomatch reports the regular expression it built; keep only the reason at the end.
      const reason = (error instanceof Error ? error.message : String(error)).split(": ").at(-1);
      return invalidInput(`${field}[${index}] "${item}" is not a usable glob: ${reason ?? "invalid"}`);
    }
  }
  return (name) => exact.has(name) || globs.some((matches) => matches(name));
}
