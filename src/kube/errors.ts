// Kubernetes API failures as values with a kind, so callers decide on retry, requeue or give-up
// without reading HTTP codes. Messages carry only the server's Status message or a network error
// code: client-node's ApiException message embeds the whole response body and headers, so it is
// never copied.

import { causeChain } from "../cause-chain.ts";
import { http } from "../node-http.ts";
import { unreachableCodes } from "../network-errors.ts";

export type KubeErrorKind =
  | "NotFound"
  | "Conflict"
  | "AlreadyExists"
  | "Gone"
  | "Throttled"
  | "Forbidden"
  | "Unauthorized"
  | "Invalid"
  | "Unavailable"
  | "Unknown";

export interface KubeErrorInit {
  kind: KubeErrorKind;
  message: string;
  /** HTTP status; undefined when no response arrived. */
  status?: number;
  /** The Kubernetes Status `reason`, e.g. "AlreadyExists", "Expired". */
  reason?: string;
  /** How long the server asked us to wait, from the Status details or the Retry-After header. */
  retryAfterSeconds?: number;
}

export class KubeError extends Error {
  override readonly name = "KubeError";
  readonly kind: KubeErrorKind;
  readonly status: number | undefined;
  readonly reason: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(init: KubeErrorInit) {
    super(init.message);
    this.kind = init.kind;
    this.status = init.status;
    this.reason = init.reason;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }
}

/** The fields of a Kubernetes `Status` object (meta/v1) that classification reads. */
interface StatusFields {
  message?: string;
  reason?: string;
  code?: number;
  retryAfterSeconds?: number;
}

/**
 * Classifies anything a Kubernetes call can throw: client-node's ApiException (`code` + `body`),
 * a watch error (`statusCode`), a watch ERROR event's Status object, or a network failure, found
 * on the error itself or along its `cause` chain.
 */
export function classifyKubeError(err: unknown): KubeError {
  if (err instanceof KubeError) return err;
  const chain = causeChain(err);
  for (const candidate of chain) {
    const http = fromHttpError(candidate);
    if (http !== undefined) return http;
  }
  for (const candidate of chain) {
    const network = fromNetworkError(candidate);
    if (network !== undefined) return network;
  }
  return new KubeError({ kind: "Unknown", message: describeUnknown(err, chain) });
}

export function isNotFound(err: unknown): boolean {
  return classifyKubeError(err).kind === "NotFound";
}

/** A write lost a resourceVersion race; re-read and retry. */
export function isConflict(err: unknown): boolean {
  return classifyKubeError(err).kind === "Conflict";
}

/** A create found the object already there. */
export function isAlreadyExists(err: unknown): boolean {
  return classifyKubeError(err).kind === "AlreadyExists";
}

function fromHttpError(value: object): KubeError | undefined {
  const record = value as Record<string, unknown>;
  const isStatusObject = record.kind === "Status";
  const status = httpStatus(record.code) ?? httpStatus(record.statusCode);
  if (status === undefined) return undefined;
  const fields = isStatusObject ? statusFields(record) : statusFields(parseBody(record.body));
  const retryAfterSeconds = fields?.retryAfterSeconds ?? retryAfterHeader(record.headers);
  const init: KubeErrorInit = {
    kind: kindForStatus(status, fields?.reason),
    status,
    message:
      fields?.message ?? `Kubernetes API answered ${status} ${http.STATUS_CODES[status] ?? ""}`.trimEnd(),
  };
  if (fields?.reason !== undefined) init.reason = fields.reason;
  if (retryAfterSeconds !== undefined) init.retryAfterSeconds = retryAfterSeconds;
  return new KubeError(init);
}

function kindForStatus(status: number, reason: string | undefined): KubeErrorKind {
  switch (status) {
    case 400:
    case 422:
      return "Invalid";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 408:
      return "Unavailable";
    case 409:
      return reason === "AlreadyExists" ? "AlreadyExists" : "Conflict";
    case 410:
      return "Gone";
    case 429:
      return "Throttled";
    default:
      return status >= 500 ? "Unavailable" : "Unknown";
  }
}

function fromNetworkError(value: object): KubeError | undefined {
  const record = value as Record<string, unknown>;
  const code = typeof record.code === "string" ? record.code : undefined;
  // The API server's host name not resolving is retried like any other outage.
  if (code !== undefined && (unreachableCodes.has(code) || code === "ENOTFOUND")) {
    return new KubeError({ kind: "Unavailable", message: `Kubernetes API unreachable: ${code}` });
  }
  if (record.name === "TimeoutError") {
    return new KubeError({ kind: "Unavailable", message: "Kubernetes API request timed out" });
  }
  return undefined;
}

function httpStatus(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value >= 100 && value <= 599
    ? value
    : undefined;
}

/** client-node passes the raw response text as the body of generated-API errors, a parsed object elsewhere. */
function parseBody(body: unknown): unknown {
  if (typeof body !== "string") return body;
  try {
    return JSON.parse(body) as unknown;
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

function statusFields(value: unknown): StatusFields | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (record.kind !== "Status") return undefined;
  const fields: StatusFields = {};
  if (typeof record.message === "string" && record.message !== "") fields.message = record.message;
  if (typeof record.reason === "string" && record.reason !== "") fields.reason = record.reason;
  const details = record.details;
  if (typeof details === "object" && details !== null) {
    const seconds = (details as Record<string, unknown>).retryAfterSeconds;
    if (typeof seconds === "number" && seconds > 0) fields.retryAfterSeconds = seconds;
  }
  return fields;
}

function retryAfterHeader(headers: unknown): number | undefined {
  if (typeof headers !== "object" || headers === null) return undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== "retry-after" || typeof value !== "string") continue;
    // The API server sends whole seconds; an HTTP-date form is not used by it.
    return /^\d+$/.test(value.trim()) ? Number(value.trim()) : undefined;
  }
  return undefined;
}

/** Only library-made text: the error's own message and the first error code along its causes. */
function describeUnknown(err: unknown, chain: object[]): string {
  if (!(err instanceof Error)) return `unexpected ${typeof err} thrown by Kubernetes client`;
  const code = chain
    .map((candidate) => (candidate as Record<string, unknown>).code)
    .find((value): value is string => typeof value === "string");
  const suffix = code === undefined ? "" : ` (${code})`;
  return `unexpected ${err.name} from Kubernetes client: ${err.message}${suffix}`;
}
