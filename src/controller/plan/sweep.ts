// Clean-up of what no ECRPullSecret claims any more: ServiceAccount entries the operator added
// for a Secret no live CR wants in that namespace, and managed Secrets whose owning CR is gone.
// This covers a CR deleted while the operator was down (garbage collection removes the Secrets,
// but only the operator knows which ServiceAccount entries it added). A Secret someone labelled
// by hand for adoption has no owner reference yet: it waits for its CR, whenever that arrives.
import type { V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import { GROUP, KIND, type ECRPullSecret } from "../../api/types.ts";
import type { NamespaceView, SecretDelete, ServiceAccountEdit } from "./desired.ts";
import { OWNER_LABEL } from "./labels.ts";
import { entriesAddedTo } from "./service-accounts.ts";
import type { ResolvedSpec } from "./spec.ts";

export interface SweepInput {
  crs: readonly ECRPullSecret[];
  specOf: (cr: ECRPullSecret) => ResolvedSpec | undefined;
  namespace: (name: string) => NamespaceView | undefined;
  serviceAccounts: readonly V1ServiceAccount[];
  managedSecrets: readonly V1Secret[];
}

export interface SweepPlan {
  serviceAccountEdits: ServiceAccountEdit[];
  secretDeletes: SecretDelete[];
}

export function planSweep(input: SweepInput): SweepPlan {
  const live = input.crs.filter((cr) => cr.metadata.deletionTimestamp === undefined);
  const specs = live.map((cr) => input.specOf(cr));
  // A CR whose spec cannot be resolved keeps what it has: an invalid edit must not wipe anything.
  const unresolvedNames = new Set(
    live.filter((_, i) => specs[i] === undefined).map((cr) => cr.metadata.name ?? ""),
  );
  const resolved = specs.filter((s): s is ResolvedSpec => s !== undefined);

  const claimed = (namespace: string, secretName: string): boolean => {
    const ns = input.namespace(namespace);
    if (ns === undefined) {
      return false;
    }
    return resolved.some((spec) => spec.secretName === secretName && spec.matchesNamespace(ns));
  };
  // Looked up per ServiceAccount entry: a set, not a scan of every managed Secret each time.
  const heldByUnresolved = new Set(
    input.managedSecrets
      .filter((s) => unresolvedNames.has(s.metadata?.labels?.[OWNER_LABEL] ?? ""))
      .map((s) => `${s.metadata?.namespace ?? ""}/${s.metadata?.name ?? ""}`),
  );
  const protectedByUnresolved = (namespace: string, secretName: string): boolean =>
    heldByUnresolved.has(`${namespace}/${secretName}`);

  const serviceAccountEdits: ServiceAccountEdit[] = [];
  for (const sa of input.serviceAccounts) {
    const namespace = sa.metadata?.namespace ?? "";
    const entries = new Set((sa.imagePullSecrets ?? []).map((ref) => ref.name ?? ""));
    const remove = entriesAddedTo(sa).filter(
      (secretName) =>
        entries.has(secretName) &&
        !claimed(namespace, secretName) &&
        !protectedByUnresolved(namespace, secretName),
    );
    if (remove.length > 0) {
      serviceAccountEdits.push({ namespace, name: sa.metadata?.name ?? "", add: [], remove });
    }
  }

  const liveUids = new Set(input.crs.map((cr) => cr.metadata.uid));
  const secretDeletes = input.managedSecrets
    .filter((s) => {
      const owners = (s.metadata?.ownerReferences ?? []).filter(
        (ref) => ref.kind === KIND && ref.apiVersion.startsWith(`${GROUP}/`),
      );
      return owners.length > 0 && !owners.some((ref) => liveUids.has(ref.uid));
    })
    .map((s) => ({ namespace: s.metadata?.namespace ?? "", name: s.metadata?.name ?? "" }));
  return { serviceAccountEdits, secretDeletes };
}
