// What the informers keep of each object. The caches hold every Namespace, ServiceAccount and
// managed Secret of the cluster, so at 20,000 namespaces each byte per object is 20 KB per kind:
// fields the operator never reads are dropped, and the label and annotation values that thousands
// of objects repeat (managed-by, owner, expiry, identity) are kept once.
import type { KubernetesObject, V1Namespace, V1ObjectMeta } from "@kubernetes/client-node";

import { dropManagedFields } from "../kube/informer/informer.ts";
import type { StringInterner } from "../kube/interner.ts";

/** Distinct label and annotation values kept for sharing; values seen often stay, rare ones rotate. */
export const sharedMetadataValues = 4096;
/** Longer values (a last-applied configuration, a JSON blob) are rarely repeated: not worth keeping. */
const maxSharedValueLength = 256;

/** Strips what the operator never reads and shares repeated label and annotation values. */
export function objectRecord<T extends KubernetesObject>(raw: T, shared: StringInterner): T {
  delete raw.metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"];
  dropManagedFields(raw);
  if (raw.metadata !== undefined) shareMetadataValues(raw.metadata, shared);
  return raw;
}

/**
 * A Namespace as the operator reads it (namespaceView): its name, labels and whether it is being
 * deleted, with the resourceVersion the informer needs. A namespace's own name, which its
 * kubernetes.io/metadata.name label repeats, is kept once.
 */
export function namespaceRecord(raw: V1Namespace, shared: StringInterner): V1Namespace {
  const { name, resourceVersion, labels, deletionTimestamp } = raw.metadata ?? {};
  const metadata: V1ObjectMeta = {};
  if (name !== undefined) metadata.name = name;
  if (resourceVersion !== undefined) metadata.resourceVersion = resourceVersion;
  if (labels !== undefined) metadata.labels = labels;
  if (deletionTimestamp !== undefined) metadata.deletionTimestamp = deletionTimestamp;
  shareMetadataValues(metadata, shared);
  const phase = raw.status?.phase;
  return phase === undefined ? { metadata } : { metadata, status: { phase } };
}

function shareMetadataValues(metadata: V1ObjectMeta, shared: StringInterner): void {
  shareValues(metadata.labels, metadata.name, shared);
  shareValues(metadata.annotations, metadata.name, shared);
}

function shareValues(
  values: Record<string, string> | undefined,
  name: string | undefined,
  shared: StringInterner,
): void {
  if (values === undefined) return;
  for (const [key, value] of Object.entries(values)) {
    if (value === name) values[key] = name;
    else if (value.length <= maxSharedValueLength) values[key] = shared.intern(value);
  }
}
