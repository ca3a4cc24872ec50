// admission.k8s.io/v1 AdmissionReview in and out: the fields of a Pod CREATE the webhook reads,
// and the response that allows it, with or without a JSON patch. The webhook never denies.
import type { JsonPatchAdd, PodView } from "./pod-pull-secrets.ts";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

export interface PodCreate {
  uid: string;
  pod: PodView;
  /** metadata.name, else metadata.generateName, for logs. */
  podName: string;
  dryRun: boolean;
}

/** A review the webhook has nothing to do with (another kind or operation): allow it unchanged. */
export interface OtherRequest {
  uid: string;
}

export class InvalidReview extends Error {
  override readonly name = "InvalidReview";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  const entries = Object.entries(value).filter((e): e is [string, string] => typeof e[1] === "string");
  return Object.fromEntries(entries);
}

function pullSecretNames(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.map((ref: unknown) => (isRecord(ref) && typeof ref.name === "string" ? ref.name : ""));
}

/** Reads an AdmissionReview; throws InvalidReview when it is not one. */
export function parseAdmissionReview(body: unknown): PodCreate | OtherRequest {
  if (!isRecord(body) || body.apiVersion !== ADMISSION_API_VERSION || body.kind !== "AdmissionReview") {
    throw new InvalidReview(`expected an ${ADMISSION_API_VERSION} AdmissionReview`);
  }
  const request = body.request;
  if (!isRecord(request) || typeof request.uid !== "string" || request.uid === "") {
    throw new InvalidReview("the AdmissionReview has no request.uid");
  }
  const uid = request.uid;
  const kind = isRecord(request.kind) ? request.kind : {};
  const isPod = kind.group === "" && kind.version === "v1" && kind.kind === "Pod";
  const object = request.object;
  if (!isPod || request.operation !== "CREATE" || request.subResource !== undefined || !isRecord(object)) {
    return { uid };
  }
  const metadata = isRecord(object.metadata) ? object.metadata : {};
  const spec = isRecord(object.spec) ? object.spec : {};
  const namespace =
    typeof request.namespace === "string" && request.namespace !== ""
      ? request.namespace
      : typeof metadata.namespace === "string"
        ? metadata.namespace
        : "";
  const name = typeof metadata.name === "string" && metadata.name !== "" ? metadata.name : undefined;
  const generateName = typeof metadata.generateName === "string" ? metadata.generateName : "";
  return {
    uid,
    podName: name ?? generateName,
    dryRun: request.dryRun === true,
    pod: {
      namespace,
      serviceAccountName: typeof spec.serviceAccountName === "string" ? spec.serviceAccountName : undefined,
      labels: stringMap(metadata.labels),
      annotations: stringMap(metadata.annotations),
      imagePullSecrets: pullSecretNames(spec.imagePullSecrets),
    },
  };
}

export function isPodCreate(request: PodCreate | OtherRequest): request is PodCreate {
  return "pod" in request;
}

/** The review that allows the request, applying `patch` when it has operations. */
export function allowResponse(uid: string, patch: readonly JsonPatchAdd[] = []): object {
  const response: Record<string, unknown> = { uid, allowed: true };
  if (patch.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = Buffer.from(JSON.stringify(patch)).toString("base64");
  }
  return { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response };
}
