// The one place that writes to the cluster: managed Secrets, ServiceAccount imagePullSecrets, an
// ECRPullSecret's finalizer and status, and Events about it; only while this replica may write
// (it leads). A dry run writes nothing and records each change to Secrets and ServiceAccounts.
// Secrets are written only with our labels and ownerReference; an unmanaged Secret of the same
// name is never touched. ServiceAccounts are changed by read-modify-write on resourceVersion,
// keeping every entry the operator did not add.
import type { V1ObjectMeta, V1Secret, V1SecretList, V1ServiceAccount } from "@kubernetes/client-node";
import {
  GROUP,
  PLURAL,
  VERSION,
  type ECRPullSecret,
  type ECRPullSecretStatus,
  type NamespaceFailureReason,
} from "../api/types.ts";
import { classifyKubeError, type KubeError } from "../kube/errors.ts";
import type { EventRecorder } from "../kube/events.ts";
import { clusterPath, namespacedPath, type KubeClient } from "../kube/rest.ts";
import type { Logger } from "../observability/logger.ts";
import type { SecretBody, SecretDelete, ServiceAccountEdit, SecretWrite } from "./plan/desired.ts";
import {
  EXPIRES_AT_ANNOTATION,
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MANAGED_SECRETS_SELECTOR,
  OWNER_LABEL,
} from "./plan/labels.ts";
import { serviceAccountPatch } from "./plan/service-accounts.ts";
import { statusPatch } from "./plan/status.ts";
import { RetryLater } from "./retry-later.ts";

const writeQuery = { fieldManager: FIELD_MANAGER };
const maxConflictRetries = 5;

/** A namespace-level failure the CR status reports; the message is safe to show (no secret). */
export class WriteFailure extends Error {
  override readonly name = "WriteFailure";
  readonly reason: NamespaceFailureReason;
  readonly retryable: boolean;

  constructor(reason: WriteFailure["reason"], message: string, retryable: boolean) {
    super(message);
    this.reason = reason;
    this.retryable = retryable;
  }
}

function failureFrom(err: KubeError, what: string): WriteFailure {
  if (err.kind === "Forbidden") {
    return new WriteFailure("Forbidden", `${what}: forbidden: ${err.message}`, false);
  }
  const retryable = err.kind !== "Invalid";
  return new WriteFailure("WriteFailed", `${what}: ${err.kind}: ${err.message}`, retryable);
}

/** A change a dry run would have made. */
export interface PlannedChange {
  action: "create" | "update" | "delete" | "patch";
  kind: "Secret" | "ServiceAccount";
  namespace: string;
  name: string;
  detail: string;
}

/** The writes themselves, to the cluster or recorded by a dry run. */
interface Writes {
  /** The Secret as written (or as it would be). */
  writeSecret(write: SecretWrite): Promise<V1Secret>;
  deleteSecret(target: SecretDelete): Promise<void>;
  /** The ServiceAccount as written; undefined when it is gone (or in a dry run). */
  editServiceAccount(
    edit: ServiceAccountEdit,
    cached: V1ServiceAccount | undefined,
  ): Promise<V1ServiceAccount | undefined>;
  /**
   * The CR as patched; undefined when it is gone (or in a dry run). Throws RetryLater when the CR
   * changed since it was read: that change may be the echo of the operator's own status write,
   * which queues nothing (watches.ts), so only a retry is sure to look at the CR again.
   */
  setFinalizers(cr: ECRPullSecret, finalizers: string[]): Promise<ECRPullSecret | undefined>;
  /** Replaces the CR's status with `status`; a CR that is gone needs none. */
  writeStatus(cr: ECRPullSecret, status: ECRPullSecretStatus): Promise<void>;
  readonly events: EventRecorder;
}

export interface Writer extends Writes {
  /** Throws RetryLater while this replica must not write (it does not lead); every write checks. */
  ensureWritable(): void;
}

export interface WriterOptions {
  kube: KubeClient;
  events: EventRecorder;
  log: Logger;
  /** False while this replica must not write (leader election). */
  canWrite: () => boolean;
  /** Write nothing: give each change to Secrets and ServiceAccounts to `onPlannedChange`. */
  dryRun: boolean;
  onPlannedChange: (change: PlannedChange) => void;
}

export function createWriter(options: WriterOptions): Writer {
  const writes = options.dryRun
    ? plannedWrites(options.onPlannedChange)
    : clusterWrites(options.kube, options.events, options.log);
  const ensureWritable = (): void => {
    if (!options.canWrite()) {
      throw new RetryLater("not the leader: writes wait");
    }
  };
  return {
    ensureWritable,
    writeSecret: async (write) => {
      ensureWritable();
      return await writes.writeSecret(write);
    },
    deleteSecret: async (target) => {
      ensureWritable();
      await writes.deleteSecret(target);
    },
    editServiceAccount: async (edit, cached) => {
      ensureWritable();
      return await writes.editServiceAccount(edit, cached);
    },
    setFinalizers: async (cr, finalizers) => {
      ensureWritable();
      return await writes.setFinalizers(cr, finalizers);
    },
    writeStatus: async (cr, status) => {
      ensureWritable();
      await writes.writeStatus(cr, status);
    },
    events: writes.events,
  };
}

function isOurs(secret: V1Secret, body: SecretBody): boolean {
  const labels = secret.metadata?.labels ?? {};
  const ownerUid = body.metadata.ownerReferences[0]?.uid;
  const ownedByUid = (secret.metadata?.ownerReferences ?? []).some((ref) => ref.uid === ownerUid);
  return (
    ownedByUid ||
    (labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && labels[OWNER_LABEL] === body.metadata.name)
  );
}

/**
 * The Secret the API server stored from `body`, from the metadata it answered with: the content is
 * what was sent (a copy of the data map, which the plan's bodies share).
 */
function storedSecret(body: SecretBody, metadata: V1ObjectMeta | undefined): V1Secret {
  return {
    apiVersion: body.apiVersion,
    kind: body.kind,
    metadata: metadata ?? { name: body.metadata.name, namespace: body.metadata.namespace },
    type: body.type,
    data: { ...body.data },
  };
}

const secretPath = (namespace: string, name?: string): string =>
  namespacedPath("/api/v1", namespace, "secrets", name);

/**
 * A managed Secret as the API server holds it, or undefined when there is none. Read by a list by
 * name and our label, not a get: the operator's RBAC grants no get on Secrets, and whatever name a
 * CR gives, the API server never hands it a Secret it does not manage.
 */
export async function readManagedSecret(
  kube: KubeClient,
  namespace: string,
  name: string,
): Promise<V1Secret | undefined> {
  const found = await kube.get<V1SecretList>(secretPath(namespace), {
    fieldSelector: `metadata.name=${name}`,
    labelSelector: MANAGED_SECRETS_SELECTOR,
  });
  return found.items[0];
}

/** The managed Secrets an ECRPullSecret owns, in every namespace, whole, a page at a time. */
export async function* ownedSecretPages(
  kube: KubeClient,
  owner: string,
  pageSize = 500,
): AsyncGenerator<V1Secret[]> {
  let next: string | undefined;
  do {
    const page = await kube.get<SecretPage>("/api/v1/secrets", {
      labelSelector: `${MANAGED_SECRETS_SELECTOR},${OWNER_LABEL}=${owner}`,
      limit: pageSize,
      continue: next,
    });
    yield page.items;
    next = page.metadata?.continue === "" ? undefined : page.metadata?.continue;
  } while (next !== undefined);
}

/** A page of a list of Secrets as the API server sends it (client-node's V1ListMeta renames `continue`). */
interface SecretPage {
  items: V1Secret[];
  metadata?: { continue?: string };
}

const serviceAccountPath = (namespace: string, name: string): string =>
  namespacedPath("/api/v1", namespace, "serviceaccounts", name);
const crPath = (name: string, subresource?: string): string =>
  clusterPath(`/apis/${GROUP}/${VERSION}`, PLURAL, name, subresource);

function clusterWrites(kube: KubeClient, events: EventRecorder, log: Logger): Writes {
  // Per object at debug: at info a refresh at 5,000 namespaces would log 5,000 lines and spend
  // about a tenth of its CPU on them; the reconciler's "reconciled" line counts them.
  const done = (namespace: string, action: string, kind: string, name: string): void => {
    log.debug({ namespace, action, kind, name }, `${kind} ${action}`);
  };

  async function patchSecret(body: SecretBody): Promise<V1Secret> {
    const { name, namespace } = body.metadata;
    const patch = {
      metadata: {
        labels: body.metadata.labels,
        annotations: body.metadata.annotations,
        ownerReferences: body.metadata.ownerReferences,
      },
      data: body.data,
    };
    return kube.mergePatch<V1Secret>(secretPath(namespace, name), patch, writeQuery);
  }

  async function putSecret(write: SecretWrite): Promise<V1Secret> {
    const { name, namespace } = write.body.metadata;
    const what = `Secret ${namespace}/${name}`;
    try {
      if (write.action === "update") {
        return await patchSecret(write.body);
      }
      const created = await kube.createForMetadata(secretPath(namespace), write.body, writeQuery);
      return storedSecret(write.body, created.metadata);
    } catch (err) {
      const error = classifyKubeError(err);
      if (write.action === "create" && error.kind === "AlreadyExists") {
        return adoptOrReportConflict(write.body);
      }
      if (write.action === "update" && error.kind === "NotFound") {
        return putSecret({ ...write, action: "create" });
      }
      throw failureFrom(error, `writing ${what}`);
    }
  }

  // A create found a Secret of that name that our label-filtered cache did not show: either ours
  // (cache lag) or somebody else's, which we must not touch. One without our label counts as
  // somebody else's (someone who strips the labels takes the Secret over).
  async function adoptOrReportConflict(body: SecretBody): Promise<V1Secret> {
    const { name, namespace } = body.metadata;
    let current: V1Secret | undefined;
    try {
      current = await readManagedSecret(kube, namespace, name);
    } catch (err) {
      throw failureFrom(classifyKubeError(err), `reading Secret ${namespace}/${name}`);
    }
    if (current === undefined || !isOurs(current, body)) {
      throw new WriteFailure(
        "SecretConflict",
        `Secret ${namespace}/${name} exists and is not managed by ecr-creds-refresher; it was left untouched`,
        false,
      );
    }
    if (current.type !== body.type) {
      throw new WriteFailure(
        "SecretConflict",
        `Secret ${namespace}/${name} has type ${current.type ?? "Opaque"}, not ${body.type}; delete it to let the operator recreate it`,
        false,
      );
    }
    try {
      return await patchSecret(body);
    } catch (err) {
      throw failureFrom(classifyKubeError(err), `writing Secret ${namespace}/${name}`);
    }
  }

  async function writeSecret(write: SecretWrite): Promise<V1Secret> {
    const written = await putSecret(write);
    const { name, namespace } = write.body.metadata;
    done(namespace, write.action === "create" ? "created" : "updated", "Secret", name);
    return written;
  }

  async function deleteSecret({ namespace, name }: SecretDelete): Promise<void> {
    try {
      await kube.delete(secretPath(namespace, name));
    } catch (err) {
      const error = classifyKubeError(err);
      if (error.kind !== "NotFound") {
        throw failureFrom(error, `deleting Secret ${namespace}/${name}`);
      }
    }
    done(namespace, "deleted", "Secret", name);
  }

  async function editServiceAccount(
    edit: ServiceAccountEdit,
    cached: V1ServiceAccount | undefined,
  ): Promise<V1ServiceAccount | undefined> {
    const updated = await patchServiceAccount(edit, cached);
    const change = [...edit.add.map((n) => `added ${n}`), ...edit.remove.map((n) => `removed ${n}`)];
    done(edit.namespace, change.join(", "), "ServiceAccount", edit.name);
    return updated;
  }

  async function patchServiceAccount(
    edit: ServiceAccountEdit,
    cached: V1ServiceAccount | undefined,
  ): Promise<V1ServiceAccount | undefined> {
    const what = `ServiceAccount ${edit.namespace}/${edit.name}`;
    let current = cached;
    for (let attempt = 0; ; attempt++) {
      try {
        current ??= await kube.get<V1ServiceAccount>(serviceAccountPath(edit.namespace, edit.name));
        const body = serviceAccountPatch(current, edit);
        if (body === undefined) {
          return current;
        }
        return await kube.mergePatch<V1ServiceAccount>(
          serviceAccountPath(edit.namespace, edit.name),
          body,
          writeQuery,
        );
      } catch (err) {
        const error = classifyKubeError(err);
        if (error.kind === "NotFound") {
          return undefined;
        }
        if (error.kind !== "Conflict" || attempt >= maxConflictRetries) {
          throw failureFrom(error, `updating ${what}`);
        }
        current = undefined;
      }
    }
  }

  async function setFinalizers(cr: ECRPullSecret, finalizers: string[]): Promise<ECRPullSecret | undefined> {
    try {
      return await kube.mergePatch<ECRPullSecret>(crPath(cr.metadata.name ?? ""), {
        metadata: { finalizers, resourceVersion: cr.metadata.resourceVersion },
      });
    } catch (err) {
      const error = classifyKubeError(err);
      if (error.kind === "Conflict") {
        throw new RetryLater(`ECRPullSecret ${cr.metadata.name ?? ""} changed since it was read`);
      }
      if (error.kind !== "NotFound") {
        throw error;
      }
      return undefined;
    }
  }

  async function writeStatus(cr: ECRPullSecret, status: ECRPullSecretStatus): Promise<void> {
    try {
      await kube.mergePatch(crPath(cr.metadata.name ?? "", "status"), {
        status: statusPatch(cr.status, status),
      });
    } catch (err) {
      const error = classifyKubeError(err);
      if (error.kind !== "NotFound") {
        throw error;
      }
    }
  }

  return { writeSecret, deleteSecret, editServiceAccount, setFinalizers, writeStatus, events };
}

/**
 * Records what would be written and writes nothing. The CR's finalizer and status are left alone
 * and no Event is recorded: `once --dry-run` prints the status it would write instead.
 */
function plannedWrites(record: (change: PlannedChange) => void): Writes {
  return {
    writeSecret(write) {
      const { name, namespace } = write.body.metadata;
      const expires = write.body.metadata.annotations[EXPIRES_AT_ANNOTATION] ?? "";
      record({ action: write.action, kind: "Secret", namespace, name, detail: `token expires ${expires}` });
      // A copy: the cache interns the data of what it records, and bodies share theirs.
      return Promise.resolve({
        ...write.body,
        metadata: { ...write.body.metadata },
        data: { ...write.body.data },
      });
    },
    deleteSecret({ namespace, name }) {
      record({ action: "delete", kind: "Secret", namespace, name, detail: "no longer targeted" });
      return Promise.resolve();
    },
    editServiceAccount(edit) {
      const parts = [...edit.add.map((n) => `+${n}`), ...edit.remove.map((n) => `-${n}`)];
      record({
        action: "patch",
        kind: "ServiceAccount",
        namespace: edit.namespace,
        name: edit.name,
        detail: `imagePullSecrets ${parts.join(" ")}`,
      });
      return Promise.resolve(undefined);
    },
    setFinalizers: () => Promise.resolve(undefined),
    writeStatus: () => Promise.resolve(),
    events: { normal: ignore, warning: ignore },
  };
}

function ignore(): void {
  // A dry run records no Events.
}
