// AWS failures as values with a kind, so the controller can choose between backing off and waiting
// for the user, and can show the message in a CR status: it names the AWS error code and never
// carries a secret (AWS error text is cut to one line, access key ids are masked, and anything
// shaped like a secret key or session token is removed).

import { causeChain } from "../cause-chain.ts";
import { unreachableCodes } from "../network-errors.ts";

export type AwsErrorKind = "AwsAuth" | "Throttled" | "Unavailable" | "InvalidInput" | "Unknown";

export interface AwsErrorInit {
  kind: AwsErrorKind;
  message: string;
  /** The AWS error name ("AccessDeniedException") or network error code ("ECONNREFUSED"). */
  code?: string;
  httpStatus?: number;
  retryable?: boolean;
}

export class AwsError extends Error {
  override readonly name = "AwsError";
  readonly kind: AwsErrorKind;
  readonly code: string | undefined;
  readonly httpStatus: number | undefined;
  /**
   * Whether the same call may succeed later without anyone changing configuration or permissions.
   * False does not mean "never retry": it means retry at the slow rate.
   */
  readonly retryable: boolean;

  constructor(init: AwsErrorInit) {
    super(init.message);
    this.kind = init.kind;
    this.code = init.code;
    this.httpStatus = init.httpStatus;
    this.retryable = init.retryable ?? defaultRetryable[init.kind];
  }
}

/** Thrown by a credential source's provider: says which source failed; the SDK's error is the cause. */
export class CredentialSourceError extends Error {
  override readonly name = "CredentialSourceError";
  /** The source's description, e.g. "role arn:aws:iam::123456789012:role/x via the AWS default credential chain". */
  readonly source: string;

  constructor(source: string, cause: unknown) {
    super(`could not get credentials from ${source}`, { cause });
    this.source = source;
  }
}

const defaultRetryable: Record<AwsErrorKind, boolean> = {
  AwsAuth: false,
  Throttled: true,
  Unavailable: true,
  InvalidInput: false,
  Unknown: true,
};

interface KnownCode {
  kind: AwsErrorKind;
  /** Replaces AWS's own text: it is vague, or (for signature errors) may quote the signed request. */
  description?: string;
  retryable?: boolean;
}

const unknownKeyId = "AWS does not recognise the access key id; check AWS_ACCESS_KEY_ID";
const wrongSecret = "the secret access key does not match the access key id; check AWS_SECRET_ACCESS_KEY";
const expired = "the credentials have expired; the operator fetches new ones on the next attempt";

const knownCodes = new Map<string, KnownCode>([
  ["UnrecognizedClientException", { kind: "AwsAuth", description: unknownKeyId }],
  ["InvalidClientTokenId", { kind: "AwsAuth", description: unknownKeyId }],
  ["InvalidAccessKeyId", { kind: "AwsAuth", description: unknownKeyId }],
  ["SignatureDoesNotMatch", { kind: "AwsAuth", description: wrongSecret }],
  ["InvalidSignatureException", { kind: "AwsAuth", description: wrongSecret }],
  ["IncompleteSignature", { kind: "AwsAuth", description: "the request signature is incomplete" }],
  ["MissingAuthenticationToken", { kind: "AwsAuth", description: "the request carried no credentials" }],
  ["ExpiredToken", { kind: "AwsAuth", description: expired, retryable: true }],
  ["ExpiredTokenException", { kind: "AwsAuth", description: expired, retryable: true }],
  ["AccessDenied", { kind: "AwsAuth" }],
  ["AccessDeniedException", { kind: "AwsAuth" }],
  ["AuthFailure", { kind: "AwsAuth" }],
  ["RegionDisabledException", { kind: "AwsAuth" }],
  ["CredentialsProviderError", { kind: "AwsAuth" }],
  ["TokenProviderError", { kind: "AwsAuth" }],
  ["ThrottlingException", { kind: "Throttled" }],
  ["Throttling", { kind: "Throttled" }],
  ["ThrottledException", { kind: "Throttled" }],
  ["TooManyRequestsException", { kind: "Throttled" }],
  ["RequestLimitExceeded", { kind: "Throttled" }],
  ["RequestThrottled", { kind: "Throttled" }],
  ["RequestThrottledException", { kind: "Throttled" }],
  ["ServiceUnavailable", { kind: "Unavailable" }],
  ["ServiceUnavailableException", { kind: "Unavailable" }],
  ["InternalFailure", { kind: "Unavailable" }],
  ["InternalError", { kind: "Unavailable" }],
  ["InternalServerError", { kind: "Unavailable" }],
  ["ServerException", { kind: "Unavailable" }],
  ["RequestTimeout", { kind: "Unavailable" }],
  ["RequestTimeoutException", { kind: "Unavailable" }],
  ["IDPCommunicationError", { kind: "Unavailable" }],
  ["TimeoutError", { kind: "Unavailable", description: "the request timed out" }],
  ["InvalidParameterException", { kind: "InvalidInput" }],
  ["InvalidParameterValue", { kind: "InvalidInput" }],
  ["ValidationError", { kind: "InvalidInput" }],
  ["ValidationException", { kind: "InvalidInput" }],
  ["EndpointError", { kind: "InvalidInput" }],
]);

/** Names every JavaScript error has; never taken for an AWS error code. */
const genericNames = new Set(["Error", "TypeError", "SyntaxError", "RangeError"]);

const maxDescriptionLength = 300;

/**
 * Classifies anything an AWS SDK call or credential provider can throw: a service exception
 * (`name` = AWS error code, `$metadata.httpStatusCode`), a deserialization error that only has a
 * status, a network or timeout error, or a CredentialSourceError wrapping any of these.
 * `context` (e.g. "ECR GetAuthorizationToken in eu-west-1") starts the message.
 */
export function classifyAwsError(err: unknown, context?: string): AwsError {
  if (err instanceof AwsError) return err;
  const chain = causeChain(err);
  const found =
    fromKnownCode(chain) ?? fromNetworkError(chain) ?? fromHttpStatus(chain) ?? unknown(err, chain);
  const source = chain.find((candidate) => candidate instanceof CredentialSourceError);
  // Failing to get credentials is an auth problem unless the failure was transient (STS throttled or down).
  const kind = source !== undefined && found.kind === "Unknown" ? "AwsAuth" : found.kind;
  // The mint's context usually names the source already; then saying which one failed again is noise.
  const sourcePart =
    source === undefined
      ? undefined
      : context?.includes(source.source)
        ? "getting credentials failed"
        : source.message;
  const parts = [context, sourcePart, found.description].filter((part) => part !== undefined);
  const init: AwsErrorInit = { kind, message: parts.join(": ") };
  if (found.code !== undefined) init.code = found.code;
  if (found.httpStatus !== undefined) init.httpStatus = found.httpStatus;
  init.retryable = found.retryable ?? defaultRetryable[kind];
  return new AwsError(init);
}

interface Classified {
  kind: AwsErrorKind;
  description: string;
  code?: string;
  httpStatus?: number;
  retryable?: boolean;
}

/**
 * AWS's text when a request is signed for a region it does not have or the endpoint does not serve
 * (e.g. "Credential should be scoped to a valid region"): a signature error, but the keys are fine.
 */
const wrongRegionText = /scoped to a valid region|the region '[^']*' is wrong/i;

function fromKnownCode(chain: object[]): Classified | undefined {
  for (const candidate of chain) {
    const code = awsCode(candidate);
    const known = code === undefined ? undefined : knownCodes.get(code);
    if (code === undefined || known === undefined) continue;
    if (known.kind === "AwsAuth" && wrongRegionText.test(messageOf(candidate) ?? "")) {
      return {
        kind: "InvalidInput",
        code,
        description: `${code}: AWS does not accept the region the request was signed for; check the region name and the endpoint`,
      };
    }
    const classified: Classified = {
      kind: known.kind,
      code,
      description: `${code}: ${known.description ?? safeText(messageOf(candidate)) ?? "no details given"}`,
    };
    const status = httpStatusOf(candidate);
    if (status !== undefined) classified.httpStatus = status;
    if (known.retryable !== undefined) classified.retryable = known.retryable;
    return classified;
  }
  return undefined;
}

function fromNetworkError(chain: object[]): Classified | undefined {
  for (const candidate of chain) {
    const record = candidate as Record<string, unknown>;
    const code = typeof record.code === "string" ? record.code : undefined;
    const message = messageOf(candidate) ?? "";
    if (code !== undefined && unreachableCodes.has(code)) {
      return { kind: "Unavailable", code, description: `AWS endpoint unreachable (${code})` };
    }
    if (code === "ENOTFOUND") {
      return {
        kind: "InvalidInput",
        code,
        description:
          "the AWS endpoint's host name does not resolve (ENOTFOUND); check the region and endpoint",
      };
    }
    if (code === "ERR_INVALID_URL") {
      return { kind: "InvalidInput", code, description: "the AWS endpoint is not a valid URL" };
    }
    if (message.startsWith("Region not accepted")) {
      return { kind: "InvalidInput", description: "the region is not a valid AWS region name" };
    }
    if (record.name === "AbortError") {
      return { kind: "Unavailable", code: "AbortError", description: "the request was aborted" };
    }
    if (message === "socket hang up") {
      return { kind: "Unavailable", description: "AWS endpoint closed the connection (socket hang up)" };
    }
  }
  return undefined;
}

function fromHttpStatus(chain: object[]): Classified | undefined {
  for (const candidate of chain) {
    const status = httpStatusOf(candidate);
    if (status === undefined) continue;
    const code = awsCode(candidate);
    const kind = kindForStatus(status);
    const description =
      code === undefined
        ? `AWS answered HTTP ${status} with a body that is not an AWS error${hintForStatus(kind)}`
        : `${code}: ${safeText(messageOf(candidate)) ?? `HTTP ${status}`}`;
    const classified: Classified = { kind, description, httpStatus: status };
    if (code !== undefined) classified.code = code;
    return classified;
  }
  return undefined;
}

function unknown(err: unknown, chain: object[]): Classified {
  if (!(err instanceof Error)) return { kind: "Unknown", description: `unexpected ${typeof err} thrown` };
  const code = chain.map(awsCode).find((value) => value !== undefined);
  const text = safeText(err.message) ?? "no details given";
  const classified: Classified = { kind: "Unknown", description: `${err.name}: ${text}` };
  if (code !== undefined) classified.code = code;
  return classified;
}

function kindForStatus(status: number): AwsErrorKind {
  if (status === 401 || status === 403) return "AwsAuth";
  if (status === 429) return "Throttled";
  if (status === 408 || status >= 500) return "Unavailable";
  return "Unknown";
}

function hintForStatus(kind: AwsErrorKind): string {
  if (kind === "AwsAuth") return "; check the credentials and that they may call ecr:GetAuthorizationToken";
  return "";
}

/** The AWS error name of an SDK exception (or a credential provider's error), if it has one. */
function awsCode(value: object): string | undefined {
  const record = value as Record<string, unknown>;
  const name = typeof record.name === "string" ? record.name : undefined;
  if (name !== undefined && !genericNames.has(name) && (knownCodes.has(name) || isServiceError(record))) {
    return name;
  }
  return typeof record.Code === "string" && record.Code !== "" ? record.Code : undefined;
}

function isServiceError(record: Record<string, unknown>): boolean {
  return "$fault" in record || "$metadata" in record;
}

function httpStatusOf(value: object): number | undefined {
  const metadata = (value as Record<string, unknown>).$metadata;
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const status = (metadata as Record<string, unknown>).httpStatusCode;
  return typeof status === "number" && Number.isInteger(status) && status >= 100 && status <= 599
    ? status
    : undefined;
}

function messageOf(value: object): string | undefined {
  const message = (value as Record<string, unknown>).message;
  return typeof message === "string" ? message : undefined;
}

/** First line of AWS or library text, secrets removed, cut to a length that fits a status message. */
function safeText(text: string | undefined): string | undefined {
  const firstLine = text?.split(/\r?\n/, 1)[0]?.trim();
  if (firstLine === undefined || firstLine === "") return undefined;
  const redacted = redactSecrets(firstLine);
  return redacted.length <= maxDescriptionLength
    ? redacted
    : `${redacted.slice(0, maxDescriptionLength - 1)}…`;
}

const accessKeyIdPattern = /\b(?:AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA|ABIA|ACCA|APKA)[A-Z0-9]{12,124}\b/g;
// Secret access keys (40 characters) and session tokens (hundreds) are base64; hyphenated names are not.
const secretShapedPattern = /[A-Za-z0-9+/=]{30,}/g;

/** Masks access key ids (AKIA****1234) and removes anything shaped like a secret key or session token. */
export function redactSecrets(text: string): string {
  return text
    .replace(accessKeyIdPattern, (id) => maskAccessKeyId(id))
    .replace(secretShapedPattern, "[redacted]");
}

/** "AKIAIOSFODNN7EXAMPLE" -> "AKIA****MPLE": enough to tell keys apart, not enough to use one. */
export function maskAccessKeyId(accessKeyId: string): string {
  if (accessKeyId.length < 12) return "****";
  return `${accessKeyId.slice(0, 4)}****${accessKeyId.slice(-4)}`;
}
