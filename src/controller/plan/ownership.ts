// Which ECRPullSecret holds a Secret name in a namespace that several want: the CR whose Secret is
// there keeps it; otherwise the oldest CR takes it (the smaller name when they are as old). The
// others report a SecretConflict there and leave the Secret alone.
import type { ECRPullSecret } from "../../api/types.ts";
import type { ResolvedSpec } from "./spec.ts";
import { compareStrings } from "../../order.ts";

/** A CR as the rule compares it. */
export interface Claimant {
  name: string;
  /** metadata.creationTimestamp as the API server sends it: RFC 3339, which sorts as text. */
  createdAt: string;
}

/** Another CR that claims Secret names, with the spec that says which. */
export interface Rival {
  claimant: Claimant;
  spec: ResolvedSpec;
}

export function claimantOf(cr: ECRPullSecret): Claimant {
  return { name: cr.metadata.name ?? "", createdAt: String(cr.metadata.creationTimestamp ?? "") };
}

/** The CRs other than `self` that claim Secret names: one being deleted, suspended or invalid claims none. */
export function rivalsOf(
  self: ECRPullSecret,
  crs: readonly ECRPullSecret[],
  specOf: (cr: ECRPullSecret) => ResolvedSpec | undefined,
): Rival[] {
  const rivals: Rival[] = [];
  for (const cr of crs) {
    if (cr.metadata.name === self.metadata.name || cr.metadata.deletionTimestamp !== undefined) continue;
    const spec = specOf(cr);
    if (spec !== undefined && !spec.suspend) rivals.push({ claimant: claimantOf(cr), spec });
  }
  return rivals;
}

/**
 * The CR that holds the Secret name ahead of `self`, or undefined when `self` may write it.
 * `wanting`: the rivals that want the same name in the namespace; `owner`: the CR the existing
 * Secret's owner label names, if there is one.
 */
export function claimedByOther(
  self: Claimant,
  wanting: readonly Claimant[],
  owner: string | undefined,
): string | undefined {
  if (wanting.length === 0 || owner === self.name) return undefined;
  if (wanting.some((rival) => rival.name === owner)) return owner;
  const [first] = [...wanting, self].sort(olderFirst);
  return first === undefined || first.name === self.name ? undefined : first.name;
}

function olderFirst(a: Claimant, b: Claimant): number {
  return a.createdAt === b.createdAt
    ? compareStrings(a.name, b.name)
    : compareStrings(a.createdAt, b.createdAt);
}
