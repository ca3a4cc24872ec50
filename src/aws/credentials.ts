// Where AWS credentials come from: the SDK's default chain, static keys from a Kubernetes Secret, or a
// role assumed on top of either. Each source has a key that tells identities apart for caching
// without revealing a secret, and a description that is safe to show a user.

import { createHash } from "node:crypto";

import type * as CredentialProviders from "@aws-sdk/credential-providers";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";

import { invalidInput } from "../api/invalid-input.ts";
import type { AssumeRole } from "../api/types.ts";
import type { InvalidInput } from "../api/invalid-input.ts";
import { systemClock } from "../clock.ts";
import type { Clock } from "../clock.ts";
import { CredentialSourceError, maskAccessKeyId } from "./errors.ts";

export interface CredentialSource {
  /** Identifies the identity for caching; a source built on another starts with the other's key. */
  readonly key: string;
  /** Names the source for status messages and logs, e.g. "static credentials AKIA****1234". */
  readonly description: string;
  readonly provider: AwsCredentialIdentityProvider;
}

export interface StaticCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface StsClientOptions {
  /** Decides when assumed-role credentials are due for renewal; defaults to the system clock. */
  readonly clock?: Clock;
  /** STS region, in the role's partition (cn-north-1 for a China role); defaults to us-east-1. */
  readonly region?: string;
  readonly endpoint?: string;
  readonly requestTimeoutMs?: number;
}

export const defaultSessionName = "ecr-creds-refresher";
/** Assumed-role credentials are renewed this long before they expire. */
export const credentialRefreshWindowMs = 5 * 60_000;
const defaultStsRegion = "us-east-1";
const defaultRequestTimeoutMs = 10_000;

/**
 * The SDK's credential providers (and the STS client they bring), loaded when credentials are first
 * asked of the default chain or an assumed role: static keys never need them.
 */
function credentialProviders(): Promise<typeof CredentialProviders> {
  return import("@aws-sdk/credential-providers");
}

/**
 * The SDK's own chain: environment, IRSA web identity, EKS Pod Identity, instance metadata. It
 * memoizes. `stsEndpoint` is where web identity tokens are exchanged, as for assumed roles.
 */
export function defaultChainSource(stsEndpoint?: string): CredentialSource {
  const description = "the AWS default credential chain";
  let chain: AwsCredentialIdentityProvider | undefined;
  const fetch = async (): Promise<AwsCredentialIdentity> => {
    chain ??= (await credentialProviders()).fromNodeProviderChain(
      stsEndpoint === undefined ? {} : { clientConfig: { endpoint: stsEndpoint } },
    );
    return chain();
  };
  return { key: "chain", description, provider: reportingSource(description, fetch) };
}

export function staticSource(credentials: StaticCredentials): CredentialSource {
  const { accessKeyId, secretAccessKey, sessionToken } = credentials;
  const identity: AwsCredentialIdentity =
    sessionToken === undefined
      ? { accessKeyId, secretAccessKey }
      : { accessKeyId, secretAccessKey, sessionToken };
  const masked = maskAccessKeyId(accessKeyId);
  return {
    key: `static:${masked}:${shortHash(accessKeyId, secretAccessKey, sessionToken ?? "")}`,
    description: `static credentials ${masked}`,
    provider: () => Promise.resolve(identity),
  };
}

/**
 * STS AssumeRole with `base` as the caller. The SDK's provider calls STS on every use, so the
 * credentials are kept here and renewed credentialRefreshWindowMs before they expire.
 */
export function assumeRoleSource(
  base: CredentialSource,
  role: AssumeRole,
  options: StsClientOptions,
): CredentialSource {
  const timeout = options.requestTimeoutMs ?? defaultRequestTimeoutMs;
  const assumeOptions = {
    masterCredentials: base.provider,
    params: {
      RoleArn: role.roleArn,
      RoleSessionName: role.sessionName ?? defaultSessionName,
      ExternalId: role.externalId,
      DurationSeconds: role.durationSeconds,
    },
    clientConfig: {
      region: options.region ?? defaultStsRegion,
      endpoint: options.endpoint,
      maxAttempts: 2,
      requestHandler: { requestTimeout: timeout, connectionTimeout: timeout, throwOnRequestTimeout: true },
    },
  };
  let provider: AwsCredentialIdentityProvider | undefined;
  const assume = async (): Promise<AwsCredentialIdentity> => {
    provider ??= (await credentialProviders()).fromTemporaryCredentials(assumeOptions);
    return provider();
  };
  const description = `role ${role.roleArn} assumed with ${base.description}`;
  const externalId = role.externalId === undefined ? "-" : shortHash(role.externalId);
  return {
    key: `${base.key}>role:${role.roleArn}:${externalId}`,
    description,
    provider: renewBeforeExpiry(
      reportingSource(description, () => assume()),
      options.clock ?? systemClock,
    ),
  };
}

/**
 * Keeps the last credentials until credentialRefreshWindowMs before their expiration; concurrent
 * callers share one fetch. When a renewal fails while the old credentials are still valid, those are
 * used, so a short STS outage does not fail a mint.
 */
export function renewBeforeExpiry(
  fetch: () => Promise<AwsCredentialIdentity>,
  clock: Clock,
): AwsCredentialIdentityProvider {
  let current: AwsCredentialIdentity | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;
  return async () => {
    const now = clock.now();
    if (current !== undefined && !dueForRenewal(current, now)) return current;
    pending ??= fetch().finally(() => {
      pending = undefined;
    });
    try {
      current = await pending;
      return current;
    } catch (err) {
      if (current?.expiration !== undefined && now < current.expiration.getTime()) return current;
      throw err;
    }
  };
}

function dueForRenewal(credentials: AwsCredentialIdentity, now: number): boolean {
  const expiration = credentials.expiration?.getTime();
  return expiration !== undefined && now >= expiration - credentialRefreshWindowMs;
}

/** Wraps failures in a CredentialSourceError so the message says which source failed. */
function reportingSource(
  description: string,
  fetch: () => Promise<AwsCredentialIdentity>,
): () => Promise<AwsCredentialIdentity> {
  return async () => {
    try {
      return await fetch();
    } catch (err) {
      throw new CredentialSourceError(description, err);
    }
  };
}

/** 12 hex digits of SHA-256: tells values apart in a cache key without revealing them. */
function shortHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 12);
}

const accessKeyIdKey = "AWS_ACCESS_KEY_ID";
const secretAccessKeyKey = "AWS_SECRET_ACCESS_KEY";
const sessionTokenKey = "AWS_SESSION_TOKEN";
/**
 * AWS defines an access key id as 16 to 128 word characters. Shorter ones pass too: AWS-compatible
 * endpoints document their own (LocalStack's is `test`), and whether keys are valid is the
 * endpoint's call, reported as AwsAuthFailed with the id masked.
 */
const maxAccessKeyIdLength = 128;
const wordCharacters = /^\w+$/;
const base64Shape = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads static keys from a Kubernetes Secret's `data` (values base64, as the API returns them).
 * A trailing newline or surrounding whitespace (from `echo` or a pasted value) is dropped. Errors
 * name the offending key and never its value.
 */
export function parseCredentialsSecret(
  data: Record<string, string> | undefined,
): StaticCredentials | InvalidInput {
  const present = Object.keys(data ?? {});
  if (data === undefined || present.length === 0) {
    return invalidInput(
      `the credentials Secret has no data; it needs ${accessKeyIdKey} and ${secretAccessKeyKey}`,
    );
  }
  const accessKeyId = readValue(data, accessKeyIdKey, present);
  if (typeof accessKeyId !== "string") return accessKeyId;
  if (!wordCharacters.test(accessKeyId) || accessKeyId.length > maxAccessKeyIdLength) {
    return invalidInput(
      `${accessKeyIdKey} in the credentials Secret is not an AWS access key id ` +
        `(up to ${maxAccessKeyIdLength} letters, digits and underscores, such as AKIA... or ASIA...; ` +
        `found ${accessKeyId.length} characters${wordCharacters.test(accessKeyId) ? "" : ", some of them other"})`,
    );
  }
  const secretAccessKey = readValue(data, secretAccessKeyKey, present);
  if (typeof secretAccessKey !== "string") return secretAccessKey;
  if (!(sessionTokenKey in data)) {
    if (accessKeyId.startsWith("ASIA")) {
      return invalidInput(
        `${accessKeyIdKey} in the credentials Secret is a temporary key (ASIA...), which needs ${sessionTokenKey} as well`,
      );
    }
    return { accessKeyId, secretAccessKey };
  }
  const sessionToken = readValue(data, sessionTokenKey, present);
  if (typeof sessionToken !== "string") return sessionToken;
  return { accessKeyId, secretAccessKey, sessionToken };
}

function readValue(data: Record<string, string>, key: string, present: string[]): string | InvalidInput {
  const where = `${key} in the credentials Secret`;
  const encoded = data[key];
  if (encoded === undefined) {
    return invalidInput(`the credentials Secret has no ${key} (it has ${present.join(", ")})`);
  }
  if (!base64Shape.test(encoded)) {
    return invalidInput(`${where} is not base64; put plain text under stringData, not data`);
  }
  let text: string;
  try {
    text = strictUtf8.decode(Buffer.from(encoded, "base64"));
  } catch (err) {
    if (err instanceof TypeError) return invalidInput(`${where} is binary, not UTF-8 text`);
    throw err;
  }
  const value = text.trim();
  if (value === "") return invalidInput(`${where} is ${text === "" ? "empty" : "only whitespace"}`);
  // Control characters and inner whitespace never occur in AWS keys: a sign of a mangled paste.
  if (/[\s\p{Cc}]/u.test(value)) return invalidInput(`${where} contains whitespace or control characters`);
  return value;
}
