// The pure core of the Pod admission webhook: which pull Secret names a Pod being created gets,
// and the JSON patch that adds them. A Pod gets exactly what the ServiceAccount admission plugin
// would have copied had the operator patched the Pod's ServiceAccount first, and nothing else.
import type { ECRPullSecret } from "../api/types.ts";
import { selectsServiceAccount, type NamespaceView } from "../controller/plan/desired.ts";
import type { ResolvedSpec } from "../controller/plan/spec.ts";
import { compareStrings } from "../order.ts";

/** On a Pod or a namespace: "disabled" turns the webhook off for it. */
export const WEBHOOK_OPT_OUT_LABEL = "ecr-creds-refresher.io/webhook";
export const WEBHOOK_OPT_OUT_VALUE = "disabled";
/** Set by the kubelet on mirror Pods, which may not reference Secrets. */
const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";

/** The Pod as admission hands it over, after the ServiceAccount admission plugin has run. */
export interface PodView {
  namespace: string;
  /** spec.serviceAccountName; empty or undefined means "default". */
  serviceAccountName: string | undefined;
  labels: Readonly<Record<string, string>> | undefined;
  annotations: Readonly<Record<string, string>> | undefined;
  /** spec.imagePullSecrets names; undefined when the field is absent. */
  imagePullSecrets: readonly string[] | undefined;
}

/** One ECRPullSecret as the caches hold it; `spec` is undefined when it does not resolve. */
export interface PullSecretClaim {
  cr: ECRPullSecret;
  spec: ResolvedSpec | undefined;
}

export interface PodAdmissionInput {
  pod: PodView;
  /** The Pod's namespace from the cache; undefined when the cache does not have it (yet). */
  namespace: NamespaceView | undefined;
  /** imagePullSecrets of the Pod's ServiceAccount as cached; undefined when not cached. */
  serviceAccountPullSecrets: readonly string[] | undefined;
  claims: readonly PullSecretClaim[];
}

export type UnchangedReason =
  "opted-out" | "mirror-pod" | "not-targeted" | "already-listed" | "own-pull-secrets";

export type PodDecision =
  | { result: "mutated"; add: string[]; ecrPullSecrets: string[] }
  | { result: "unchanged"; reason: UnchangedReason };

export interface JsonPatchAdd {
  op: "add";
  path: string;
  value: unknown;
}

function optedOut(labels: Readonly<Record<string, string>> | undefined): boolean {
  return labels?.[WEBHOOK_OPT_OUT_LABEL] === WEBHOOK_OPT_OUT_VALUE;
}

/** Whether a CR's status reports that another owner holds its Secret name in the namespace. */
function conflictedIn(cr: ECRPullSecret, namespace: string): boolean {
  return (cr.status?.failures ?? []).some((f) => f.namespace === namespace && f.reason === "SecretConflict");
}

/** The Secret names the CRs would have put on the Pod's ServiceAccount, with the CRs that want each. */
function wantedNames(input: PodAdmissionInput, serviceAccount: string): Map<string, string[]> {
  const namespace = input.namespace ?? { name: input.pod.namespace, labels: undefined, terminating: false };
  const wanted = new Map<string, string[]>();
  const claims = [...input.claims].sort((a, b) =>
    compareStrings(a.cr.metadata.name ?? "", b.cr.metadata.name ?? ""),
  );
  for (const { cr, spec } of claims) {
    if (spec === undefined || spec.suspend || cr.metadata.deletionTimestamp !== undefined) continue;
    if (!spec.matchesNamespace(namespace) || !selectsServiceAccount(spec, serviceAccount)) continue;
    if (conflictedIn(cr, namespace.name)) continue;
    wanted.set(spec.secretName, [...(wanted.get(spec.secretName) ?? []), cr.metadata.name ?? ""]);
  }
  return wanted;
}

/** The Pod's ServiceAccount: spec.serviceAccountName, "default" when it names none. */
export function podServiceAccount(pod: PodView): string {
  return pod.serviceAccountName === undefined || pod.serviceAccountName === ""
    ? "default"
    : pod.serviceAccountName;
}

export function decidePodPullSecrets(input: PodAdmissionInput): PodDecision {
  const { pod } = input;
  if (optedOut(pod.labels) || optedOut(input.namespace?.labels)) {
    return { result: "unchanged", reason: "opted-out" };
  }
  if (pod.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) {
    return { result: "unchanged", reason: "mirror-pod" };
  }
  const wanted = wantedNames(input, podServiceAccount(pod));
  if (wanted.size === 0) return { result: "unchanged", reason: "not-targeted" };

  const listed = pod.imagePullSecrets ?? [];
  // The ServiceAccount plugin copies the account's entries only into a Pod that lists none, so a
  // list holding anything the account does not have (nor would have) is the Pod's own.
  const fromServiceAccount = new Set([...(input.serviceAccountPullSecrets ?? []), ...wanted.keys()]);
  if (listed.some((name) => !fromServiceAccount.has(name))) {
    return { result: "unchanged", reason: "own-pull-secrets" };
  }
  const add = [...wanted.keys()].filter((name) => !listed.includes(name));
  if (add.length === 0) return { result: "unchanged", reason: "already-listed" };
  const ecrPullSecrets = [...new Set(add.flatMap((name) => wanted.get(name) ?? []))];
  return { result: "mutated", add, ecrPullSecrets };
}

/**
 * Adds `names` after the Pod's existing entries: the whole list when the field is absent, else one
 * append per name, so that nothing already there is removed or moved.
 */
export function imagePullSecretsPatch(
  existing: readonly string[] | undefined,
  names: readonly string[],
): JsonPatchAdd[] {
  if (names.length === 0) return [];
  if (existing === undefined) {
    return [{ op: "add", path: "/spec/imagePullSecrets", value: names.map((name) => ({ name })) }];
  }
  return names.map((name) => ({ op: "add", path: "/spec/imagePullSecrets/-", value: { name } }));
}
