// The pure core of reconcile: from one ECRPullSecret, the cluster as the caches see it and the
// current token content, decide which Secrets to create, update or delete and which
// ServiceAccount entries to add or remove. No I/O here; reconcile applies the plan.
import { createHash } from "node:crypto";
import { API_VERSION, KIND } from "../../api/types.ts";
import {
  CONTENT_DIGEST_ANNOTATION,
  EXPIRES_AT_ANNOTATION,
  IDENTITY_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OWNER_LABEL,
  REFRESHED_AT_ANNOTATION,
} from "./labels.ts";
import type { ResolvedSpec } from "./spec.ts";

export interface Owner {
  name: string;
  uid: string;
}

export interface NamespaceView {
  name: string;
  labels: Readonly<Record<string, string>> | undefined;
  terminating: boolean;
}

export interface ServiceAccountView {
  namespace: string;
  name: string;
  imagePullSecrets: readonly string[];
  /** Entries the operator added, from ADDED_PULL_SECRETS_ANNOTATION. */
  added: readonly string[];
}

export interface ManagedSecretView {
  namespace: string;
  name: string;
  type: string | undefined;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  ownerUids: readonly string[];
  dockerConfigJson: string | undefined;
}

/** The content every managed Secret of one CR should hold; undefined while no token is available. */
export interface SecretContent {
  dockerConfigJson: string;
  expiresAt: string;
  refreshedAt: string;
  /** Hash of the AWS identity that minted the tokens (IDENTITY_ANNOTATION). */
  identity: string;
}

export interface ClusterView {
  namespaces: Iterable<NamespaceView>;
  serviceAccounts(namespace: string): readonly ServiceAccountView[];
  managedSecret(namespace: string, name: string): ManagedSecretView | undefined;
  /** Managed Secrets labelled as owned by `owner`, in any namespace. */
  ownedSecrets(owner: string): readonly ManagedSecretView[];
  /** Another ECRPullSecret that holds (namespace, secretName) ahead of this one, if any. */
  claimedByOther(namespace: string, secretName: string): string | undefined;
}

export interface SecretBody {
  apiVersion: "v1";
  kind: "Secret";
  type: "kubernetes.io/dockerconfigjson";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller: boolean;
      blockOwnerDeletion: boolean;
    }[];
  };
  data: { ".dockerconfigjson": string };
}

export interface SecretWrite {
  action: "create" | "update";
  namespace: string;
  body: SecretBody;
}

export interface SecretDelete {
  namespace: string;
  name: string;
}

export interface ServiceAccountEdit {
  namespace: string;
  name: string;
  add: string[];
  remove: string[];
}

export interface NamespaceConflict {
  namespace: string;
  reason: "SecretConflict";
  message: string;
}

export interface Plan {
  /** Target namespaces (terminating ones excluded). */
  desired: string[];
  /** Target namespaces already fully in the desired state. */
  inSync: string[];
  secretWrites: SecretWrite[];
  secretDeletes: SecretDelete[];
  serviceAccountEdits: ServiceAccountEdit[];
  conflicts: NamespaceConflict[];
}

/** A plan that changes nothing. */
export function emptyPlan(): Plan {
  return {
    desired: [],
    inSync: [],
    secretWrites: [],
    secretDeletes: [],
    serviceAccountEdits: [],
    conflicts: [],
  };
}

/**
 * The CONTENT_DIGEST_ANNOTATION of a content: 128 bits of SHA-256 over the text and the
 * annotations that go with it, enough to tell contents apart and saying nothing of the token.
 */
export function contentDigest(content: SecretContent): string {
  const { dockerConfigJson, expiresAt, refreshedAt, identity } = content;
  return createHash("sha256")
    .update(JSON.stringify([dockerConfigJson, expiresAt, refreshedAt, identity]))
    .digest("hex")
    .slice(0, 32);
}

/**
 * The Secret body for each namespace, built once: every body of one plan shares its labels,
 * annotations, owner reference and data (a cold converge at 20,000 namespaces holds 20,000 bodies
 * until its last write). The shared parts are never changed in place.
 */
function secretBodies(owner: Owner, name: string, content: SecretContent): (namespace: string) => SecretBody {
  const shared = desiredSecretBody(owner, "", name, content);
  return (namespace) => ({ ...shared, metadata: { ...shared.metadata, namespace } });
}

export function desiredSecretBody(
  owner: Owner,
  namespace: string,
  name: string,
  content: SecretContent,
): SecretBody {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/dockerconfigjson",
    metadata: {
      name,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: owner.name },
      annotations: {
        [EXPIRES_AT_ANNOTATION]: content.expiresAt,
        [REFRESHED_AT_ANNOTATION]: content.refreshedAt,
        [IDENTITY_ANNOTATION]: content.identity,
        [CONTENT_DIGEST_ANNOTATION]: contentDigest(content),
      },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: KIND,
          name: owner.name,
          uid: owner.uid,
          controller: true,
          blockOwnerDeletion: false,
        },
      ],
    },
    data: { ".dockerconfigjson": Buffer.from(content.dockerConfigJson).toString("base64") },
  };
}

/**
 * Whether a Secret holds what the plan would write. One without a digest, written before there was
 * one, is left as it is: the next refresh adds it.
 */
function secretMatches(
  existing: ManagedSecretView,
  owner: Owner,
  content: SecretContent,
  digest: string,
): boolean {
  return (
    existing.type === "kubernetes.io/dockerconfigjson" &&
    existing.dockerConfigJson === content.dockerConfigJson &&
    existing.labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE &&
    existing.labels[OWNER_LABEL] === owner.name &&
    existing.annotations[EXPIRES_AT_ANNOTATION] === content.expiresAt &&
    existing.annotations[REFRESHED_AT_ANNOTATION] === content.refreshedAt &&
    existing.annotations[IDENTITY_ANNOTATION] === content.identity &&
    (existing.annotations[CONTENT_DIGEST_ANNOTATION] ?? digest) === digest &&
    existing.ownerUids.includes(owner.uid)
  );
}

/** Whether the CR's `serviceAccounts` choice includes the ServiceAccount of this name. */
export function selectsServiceAccount(spec: ResolvedSpec, serviceAccount: string): boolean {
  return spec.serviceAccounts.all || spec.serviceAccounts.names.has(serviceAccount);
}

/** Edits that take `secretName` out of every ServiceAccount in `namespace` where the operator added it. */
function removalsIn(view: ClusterView, namespace: string, secretName: string): ServiceAccountEdit[] {
  return view
    .serviceAccounts(namespace)
    .filter((sa) => sa.added.includes(secretName) && sa.imagePullSecrets.includes(secretName))
    .map((sa) => ({ namespace, name: sa.name, add: [], remove: [secretName] }));
}

export function planPullSecrets(
  owner: Owner,
  spec: ResolvedSpec,
  view: ClusterView,
  content: SecretContent | undefined,
): Plan {
  const plan = emptyPlan();
  const name = spec.secretName;
  const targeted = new Set<string>();
  let bodyFor: ((namespace: string) => SecretBody) | undefined;
  const digest = content === undefined ? "" : contentDigest(content);

  for (const namespace of view.namespaces) {
    if (!spec.matchesNamespace(namespace)) {
      continue;
    }
    targeted.add(namespace.name);
    if (namespace.terminating) {
      continue;
    }
    const ns = namespace.name;
    plan.desired.push(ns);

    const existing = view.managedSecret(ns, name);
    const holder = view.claimedByOther(ns, name);
    if (holder !== undefined) {
      plan.conflicts.push({
        namespace: ns,
        reason: "SecretConflict",
        message: `Secret ${ns}/${name} belongs to ECRPullSecret ${holder}`,
      });
      continue;
    }

    let secretPresent = existing !== undefined;
    let secretCurrent =
      existing !== undefined && content !== undefined && secretMatches(existing, owner, content, digest);
    const secretWritten = content !== undefined && !secretCurrent;
    if (secretWritten) {
      bodyFor ??= secretBodies(owner, name, content);
      plan.secretWrites.push({
        action: existing === undefined ? "create" : "update",
        namespace: ns,
        body: bodyFor(ns),
      });
      secretPresent = true;
      secretCurrent = true;
    }

    let serviceAccountsCurrent = true;
    for (const sa of view.serviceAccounts(ns)) {
      const has = sa.imagePullSecrets.includes(name);
      if (selectsServiceAccount(spec, sa.name)) {
        if (!has && secretPresent) {
          plan.serviceAccountEdits.push({ namespace: ns, name: sa.name, add: [name], remove: [] });
          serviceAccountsCurrent = false;
        }
      } else if (has && sa.added.includes(name)) {
        plan.serviceAccountEdits.push({ namespace: ns, name: sa.name, add: [], remove: [name] });
        serviceAccountsCurrent = false;
      }
    }
    if (secretCurrent && !secretWritten && serviceAccountsCurrent && content !== undefined) {
      plan.inSync.push(ns);
    }
  }

  // Secrets this CR owns that it no longer wants: namespace dropped out, or secretName changed.
  for (const secret of view.ownedSecrets(owner.name)) {
    const stillWanted = secret.name === name && targeted.has(secret.namespace);
    if (stillWanted || !secret.ownerUids.includes(owner.uid)) {
      continue;
    }
    plan.secretDeletes.push({ namespace: secret.namespace, name: secret.name });
    plan.serviceAccountEdits.push(...removalsIn(view, secret.namespace, secret.name));
  }
  plan.serviceAccountEdits = mergeEdits(plan.serviceAccountEdits);
  return plan;
}

/** One edit per ServiceAccount, so a renamed Secret costs one write there, not two. */
function mergeEdits(edits: readonly ServiceAccountEdit[]): ServiceAccountEdit[] {
  const merged = new Map<string, ServiceAccountEdit>();
  for (const edit of edits) {
    const key = `${edit.namespace}/${edit.name}`;
    const existing = merged.get(key);
    if (existing === undefined) {
      merged.set(key, { ...edit, add: [...edit.add], remove: [...edit.remove] });
    } else {
      existing.add.push(...edit.add.filter((n) => !existing.add.includes(n)));
      existing.remove.push(...edit.remove.filter((n) => !existing.remove.includes(n)));
    }
  }
  return [...merged.values()];
}

/**
 * The content one of the CR's current Secrets holds, as an earlier run wrote it: what a restarted
 * operator can adopt instead of minting and rewriting everything.
 */
export function existingContent(
  owner: Owner,
  spec: ResolvedSpec,
  view: ClusterView,
): SecretContent | undefined {
  for (const secret of view.ownedSecrets(owner.name)) {
    if (secret.name !== spec.secretName || !secret.ownerUids.includes(owner.uid)) continue;
    const content = heldContent(secret);
    if (content !== undefined) return content;
  }
  return undefined;
}

/** The content a managed Secret holds with the annotations that go with it, if it has all of them. */
export function heldContent(
  secret: Pick<ManagedSecretView, "annotations" | "dockerConfigJson">,
): SecretContent | undefined {
  const { annotations, dockerConfigJson } = secret;
  const expiresAt = annotations[EXPIRES_AT_ANNOTATION];
  const refreshedAt = annotations[REFRESHED_AT_ANNOTATION];
  const identity = annotations[IDENTITY_ANNOTATION];
  if (
    dockerConfigJson === undefined ||
    expiresAt === undefined ||
    refreshedAt === undefined ||
    identity === undefined
  ) {
    return undefined;
  }
  return { dockerConfigJson, expiresAt, refreshedAt, identity };
}

/** What deleting the CR must undo: its Secrets and the ServiceAccount entries it added. */
export function planCleanup(owner: Owner, view: ClusterView): Plan {
  const plan = emptyPlan();
  for (const secret of view.ownedSecrets(owner.name)) {
    if (!secret.ownerUids.includes(owner.uid)) {
      continue;
    }
    plan.secretDeletes.push({ namespace: secret.namespace, name: secret.name });
    plan.serviceAccountEdits.push(...removalsIn(view, secret.namespace, secret.name));
  }
  return plan;
}
