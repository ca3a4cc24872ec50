// The one place that writes to the cluster: managed Secrets and ServiceAccount imagePullSecrets.
// Secrets are written only with our labels and ownerReference; an unmanaged Secret of the same
// name is never touched. ServiceAccounts are changed by read-modify-write on resourceVersion,
// keeping every entry the operator did not add.
import type { V1Secret, V1SecretList, V1ServiceAccount } from "@kubernetes/client-node";
import { classifyKubeError, type KubeError } from "../kube/errors.ts";
import { namespacedPath, type KubeClient } from "../kube/rest.ts";
import type { SecretBody, SecretDelete, ServiceAccountEdit, SecretWrite } from "./plan/desired.ts";
import {
  EXPIRES_AT_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MANAGED_SECRETS_SELECTOR,
  OWNER_LABEL,
} from "./plan/labels.ts";
import { serviceAccountPatch } from "./plan/service-accounts.ts";
import type { NamespaceFailureReason } from "./plan/status.ts";

export const FIELD_MANAGER = "ecr-creds-refresher";
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

export interface PullSecretWriter {
  writeSecret(write: SecretWrite): Promise<V1Secret>;
  deleteSecret(target: SecretDelete): Promise<void>;
  editServiceAccount(
    edit: ServiceAccountEdit,
    cached: V1ServiceAccount | undefined,
  ): Promise<V1ServiceAccount | undefined>;
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

const secretPath = (namespace: string, name?: string): string =>
  namespacedPath("/api/v1", namespace, "secrets", name);
const serviceAccountPath = (namespace: string, name: string): string =>
  namespacedPath("/api/v1", namespace, "serviceaccounts", name);

export function createPullSecretWriter(kube: KubeClient): PullSecretWriter {
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

  async function writeSecret(write: SecretWrite): Promise<V1Secret> {
    const { name, namespace } = write.body.metadata;
    const what = `Secret ${namespace}/${name}`;
    try {
      if (write.action === "update") {
        return await patchSecret(write.body);
      }
      return await kube.create<V1Secret>(secretPath(namespace), write.body, writeQuery);
    } catch (err) {
      const error = classifyKubeError(err);
      if (write.action === "create" && error.kind === "AlreadyExists") {
        return adoptOrReportConflict(write.body);
      }
      if (write.action === "update" && error.kind === "NotFound") {
        return writeSecret({ ...write, action: "create" });
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
      // A list by name and our label, not a get: the operator's RBAC grants no get on Secrets, and
      // whatever name a CR gives, the API server never hands it a Secret it does not manage.
      const found = await kube.get<V1SecretList>(secretPath(namespace), {
        fieldSelector: `metadata.name=${name}`,
        labelSelector: MANAGED_SECRETS_SELECTOR,
      });
      current = found.items[0];
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

  async function deleteSecret({ namespace, name }: SecretDelete): Promise<void> {
    try {
      await kube.delete(secretPath(namespace, name));
    } catch (err) {
      const error = classifyKubeError(err);
      if (error.kind !== "NotFound") {
        throw failureFrom(error, `deleting Secret ${namespace}/${name}`);
      }
    }
  }

  async function editServiceAccount(
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

  return { writeSecret, deleteSecret, editServiceAccount };
}

/** A change a dry run would have made. */
export interface PlannedChange {
  action: "create" | "update" | "delete" | "patch";
  kind: "Secret" | "ServiceAccount";
  namespace: string;
  name: string;
  detail: string;
}

/** Records what would be written and writes nothing. */
export function createDryRunWriter(record: (change: PlannedChange) => void): PullSecretWriter {
  return {
    writeSecret(write) {
      const { name, namespace } = write.body.metadata;
      const expires = write.body.metadata.annotations[EXPIRES_AT_ANNOTATION] ?? "";
      record({ action: write.action, kind: "Secret", namespace, name, detail: `token expires ${expires}` });
      return Promise.resolve({ ...write.body, metadata: { ...write.body.metadata } });
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
  };
}
