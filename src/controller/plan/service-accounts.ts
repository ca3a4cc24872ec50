// A ServiceAccount's imagePullSecrets as the operator changes them: the entries it added (recorded
// in an annotation, so that clean-up removes those and never one someone else put there) and the
// merge patch that adds or removes entries.
import type { V1ServiceAccount } from "@kubernetes/client-node";
import type { ServiceAccountEdit } from "./desired.ts";
import { ADDED_PULL_SECRETS_ANNOTATION } from "./labels.ts";

/** The imagePullSecrets entries the operator added to `sa`, from its annotation. */
export function entriesAddedTo(sa: V1ServiceAccount): string[] {
  return (sa.metadata?.annotations?.[ADDED_PULL_SECRETS_ANNOTATION] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * The merge patch that applies `edit` to `current`, or undefined when nothing changes. It carries
 * resourceVersion, so a concurrent change makes it fail with 409 instead of losing that change:
 * imagePullSecrets is an atomic list and a merge patch replaces it whole.
 */
export function serviceAccountPatch(current: V1ServiceAccount, edit: ServiceAccountEdit): object | undefined {
  const entries = (current.imagePullSecrets ?? []).map((ref) => ref.name ?? "");
  const added = entriesAddedTo(current);
  let nextEntries = entries.filter((name) => !(edit.remove.includes(name) && added.includes(name)));
  let nextAdded = added.filter((name) => !edit.remove.includes(name));
  for (const name of edit.add) {
    if (!nextEntries.includes(name)) {
      nextEntries = [...nextEntries, name];
      if (!nextAdded.includes(name)) {
        nextAdded = [...nextAdded, name];
      }
    }
  }
  const sameEntries = nextEntries.length === entries.length && nextEntries.every((n, i) => n === entries[i]);
  const sameAdded = nextAdded.length === added.length && nextAdded.every((n, i) => n === added[i]);
  if (sameEntries && sameAdded) {
    return undefined;
  }
  return {
    metadata: {
      resourceVersion: current.metadata?.resourceVersion,
      annotations: { [ADDED_PULL_SECRETS_ANNOTATION]: nextAdded.length > 0 ? nextAdded.join(",") : null },
    },
    imagePullSecrets: nextEntries.map((name) => ({ name })),
  };
}
