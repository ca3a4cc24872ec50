// Minting ECR registry tokens: GetAuthorizationToken for private ECR (one token per identity and
// region serves every registry the identity may read there) and for ECR Public (us-east-1 only).

import { inspect } from "node:util";

import type * as Ecr from "@aws-sdk/client-ecr";
import type { AuthorizationData, ECRClient } from "@aws-sdk/client-ecr";
import type * as EcrPublic from "@aws-sdk/client-ecr-public";
import type {
  AuthorizationData as PublicAuthorizationData,
  ECRPUBLICClient,
} from "@aws-sdk/client-ecr-public";

import { patterns } from "../api/crd.ts";
import type { Clock } from "../clock.ts";
import type { CredentialSource } from "./credentials.ts";
import { AwsError, classifyAwsError } from "./errors.ts";

export type TokenKind = "private" | "public";

export interface EcrToken {
  readonly kind: TokenKind;
  /** The region the token was minted in; us-east-1 for ECR Public. */
  readonly region: string;
  /** Always "AWS" for ECR. */
  readonly username: string;
  readonly password: string;
  /** The registry URL ECR named with a private token, e.g. https://123456789012.dkr.ecr.eu-west-1.amazonaws.com. */
  readonly proxyEndpoint?: string;
  /** Milliseconds since the epoch, taken just before the request. */
  readonly mintedAt: number;
  /** When the token stops working, as sanitizeExpiry decided. */
  readonly expiresAt: number;
  /** What AWS reported, when it reported anything. */
  readonly reportedExpiresAt?: number;
}

export interface MintOptions {
  readonly clock: Clock;
  /** Overrides the ECR (or ECR Public) API endpoint, e.g. for a VPC endpoint or a test stand-in. */
  readonly endpoint?: string;
  /** Private tokens through ECR's FIPS endpoint (dkr.ecr-fips hosts); an `endpoint` override wins. */
  readonly fips?: boolean;
  /** Bounds each HTTP request (connect and response); defaults to 10 s. */
  readonly requestTimeoutMs?: number;
  /** The SDK clients to mint with, reused across mints. */
  readonly clients: EcrClientPool;
}

export const ecrPublicRegion = "us-east-1";
const defaultRequestTimeoutMs = 10_000;
const defaultLifetimeMs = 12 * 3_600_000;
const maxPlausibleLifetimeMs = 24 * 3_600_000;
const minPlausibleLifetimeMs = 5 * 60_000;
const regionPattern = new RegExp(patterns.region);

/**
 * The expiry to plan with: what AWS reported, unless that is missing, in the past (moto reports
 * 2015-01-01), less than 5 minutes ahead or more than 24 h ahead; then 12 h after minting, ECR's
 * documented token lifetime.
 */
export function sanitizeExpiry(reported: Date | undefined, mintedAt: number): number {
  const reportedMs = reported?.getTime();
  if (reportedMs === undefined || Number.isNaN(reportedMs)) return mintedAt + defaultLifetimeMs;
  const ahead = reportedMs - mintedAt;
  if (ahead < minPlausibleLifetimeMs || ahead > maxPlausibleLifetimeMs) return mintedAt + defaultLifetimeMs;
  return reportedMs;
}

export async function mintPrivateToken(
  source: CredentialSource,
  region: string,
  options: MintOptions,
): Promise<EcrToken> {
  const fips = options.fips === true ? " (FIPS)" : "";
  const context = `ECR GetAuthorizationToken in ${region}${fips} with ${source.description}`;
  if (!regionPattern.test(region)) {
    throw new AwsError({
      kind: "InvalidInput",
      message: `${context}: "${region}" is not an AWS region name`,
    });
  }
  const client = await options.clients.privateClient(source, region, settingsOf(options));
  const { GetAuthorizationTokenCommand } = await ecrSdk();
  const mintedAt = options.clock.now();
  let data: AuthorizationData | undefined;
  try {
    data = (await client.send(new GetAuthorizationTokenCommand({}))).authorizationData?.[0];
  } catch (err) {
    throw classifyAwsError(err, context);
  }
  const init: TokenInit = { kind: "private", region, mintedAt, encoded: data?.authorizationToken, context };
  if (data?.expiresAt !== undefined) init.reportedExpiresAt = data.expiresAt;
  if (data?.proxyEndpoint !== undefined) init.proxyEndpoint = data.proxyEndpoint;
  return tokenFrom(init);
}

/** A token for public.ecr.aws; needs ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken. */
export async function mintPublicToken(source: CredentialSource, options: MintOptions): Promise<EcrToken> {
  const context = `ECR Public GetAuthorizationToken with ${source.description}`;
  const client = await options.clients.publicClient(source, settingsOf(options));
  const { GetAuthorizationTokenCommand: GetPublicAuthorizationTokenCommand } = await ecrPublicSdk();
  const mintedAt = options.clock.now();
  let data: PublicAuthorizationData | undefined;
  try {
    data = (await client.send(new GetPublicAuthorizationTokenCommand({}))).authorizationData;
  } catch (err) {
    throw classifyAwsError(err, context);
  }
  const init: TokenInit = {
    kind: "public",
    region: ecrPublicRegion,
    mintedAt,
    encoded: data?.authorizationToken,
    context,
  };
  if (data?.expiresAt !== undefined) init.reportedExpiresAt = data.expiresAt;
  return tokenFrom(init);
}

interface TokenInit {
  kind: TokenKind;
  region: string;
  mintedAt: number;
  encoded: string | undefined;
  context: string;
  reportedExpiresAt?: Date;
  proxyEndpoint?: string;
}

function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

function tokenFrom(init: TokenInit): EcrToken {
  const { username, password } = decodeAuthorizationToken(init.encoded, init.context);
  const token: { -readonly [K in keyof EcrToken]: EcrToken[K] } = {
    kind: init.kind,
    region: init.region,
    username,
    password,
    // Whole seconds, as the Secrets' annotations record them: a token read back from a Secret
    // after a restart is then the same token, with the same refresh time and status.
    mintedAt: wholeSeconds(init.mintedAt),
    expiresAt: wholeSeconds(sanitizeExpiry(init.reportedExpiresAt, init.mintedAt)),
  };
  if (init.proxyEndpoint !== undefined) token.proxyEndpoint = init.proxyEndpoint;
  const reported = init.reportedExpiresAt?.getTime();
  if (reported !== undefined && !Number.isNaN(reported)) token.reportedExpiresAt = reported;
  return withoutPasswordInLogs(token);
}

/** ECR's authorizationToken is base64("AWS:<password>"). */
export function decodeAuthorizationToken(
  encoded: string | undefined,
  context: string,
): { username: string; password: string } {
  const malformed = (what: string): AwsError =>
    new AwsError({ kind: "Unknown", message: `${context}: ECR returned ${what}` });
  if (encoded === undefined || encoded === "") throw malformed("no authorization token");
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const separator = decoded.indexOf(":");
  if (separator <= 0 || separator === decoded.length - 1) {
    throw malformed("an authorization token that is not base64 of user:password");
  }
  return { username: decoded.slice(0, separator), password: decoded.slice(separator + 1) };
}

/** JSON.stringify (and so pino) and util.inspect show the token without its password. */
function withoutPasswordInLogs(token: EcrToken): EcrToken {
  const redacted = (): object => ({ ...token, password: "[redacted]" });
  Object.defineProperty(token, "toJSON", { value: redacted });
  Object.defineProperty(token, inspect.custom, { value: redacted });
  return token;
}

export interface ClientSettings {
  readonly endpoint: string | undefined;
  readonly requestTimeoutMs: number;
  readonly fips?: boolean;
}

function settingsOf(options: MintOptions): ClientSettings {
  return {
    endpoint: options.endpoint,
    requestTimeoutMs: options.requestTimeoutMs ?? defaultRequestTimeoutMs,
    fips: options.fips === true,
  };
}

let ecrSdkLoad: Promise<typeof Ecr> | undefined;

/**
 * The ECR SDK, loaded on first use or by EcrClientPool.preload: it is the largest part of what the
 * operator loads (about a third of its start-up before the first request, and 10 MiB), and nothing
 * needs it before the caches are full.
 */
function ecrSdk(): Promise<typeof Ecr> {
  ecrSdkLoad ??= import("@aws-sdk/client-ecr");
  return ecrSdkLoad;
}

/** The ECR Public SDK, loaded on first use: most installations never mint a public token. */
function ecrPublicSdk(): Promise<typeof EcrPublic> {
  return import("@aws-sdk/client-ecr-public");
}

type PooledClient =
  | { readonly sourceKey: string; readonly kind: "private"; readonly client: ECRClient }
  | { readonly sourceKey: string; readonly kind: "public"; readonly client: ECRPUBLICClient };

/**
 * SDK clients per (source, region, endpoint, timeout), so connections and the SDK's credential
 * cache are reused across mints. Few retries: the operator's workqueue does the backing off.
 */
export class EcrClientPool {
  readonly #clients = new Map<string, PooledClient>();

  /** Loads the ECR SDK now, so that the first mint need not wait for it. */
  preload(): Promise<void> {
    return ecrSdk().then(() => undefined);
  }

  async privateClient(
    source: CredentialSource,
    region: string,
    settings: ClientSettings,
  ): Promise<ECRClient> {
    // Loaded before the pool is looked at, so that concurrent first mints share one client.
    const { ECRClient } = await ecrSdk();
    const key = JSON.stringify([
      "private",
      source.key,
      region,
      settings.endpoint ?? "",
      settings.requestTimeoutMs,
      settings.fips === true,
    ]);
    const existing = this.#clients.get(key);
    if (existing?.kind === "private") return existing.client;
    const client = new ECRClient(clientConfig(source, region, settings));
    this.#clients.set(key, { sourceKey: source.key, kind: "private", client });
    return client;
  }

  async publicClient(source: CredentialSource, settings: ClientSettings): Promise<ECRPUBLICClient> {
    // Loaded before the pool is looked at, so that concurrent first mints share one client.
    const { ECRPUBLICClient } = await ecrPublicSdk();
    const key = JSON.stringify(["public", source.key, settings.endpoint ?? "", settings.requestTimeoutMs]);
    const existing = this.#clients.get(key);
    if (existing?.kind === "public") return existing.client;
    const client = new ECRPUBLICClient(clientConfig(source, ecrPublicRegion, settings));
    this.#clients.set(key, { sourceKey: source.key, kind: "public", client });
    return client;
  }

  /** Closes the clients of every source whose key starts with the prefix (credentials rotated away). */
  forget(sourceKeyPrefix: string): void {
    for (const [key, pooled] of this.#clients) {
      if (!pooled.sourceKey.startsWith(sourceKeyPrefix)) continue;
      pooled.client.destroy();
      this.#clients.delete(key);
    }
  }

  get size(): number {
    return this.#clients.size;
  }

  destroy(): void {
    this.forget("");
  }
}

function clientConfig(source: CredentialSource, region: string, settings: ClientSettings) {
  const timeout = settings.requestTimeoutMs;
  return {
    region,
    credentials: source.provider,
    maxAttempts: 2,
    requestHandler: { requestTimeout: timeout, connectionTimeout: timeout, throwOnRequestTimeout: true },
    endpoint: settings.endpoint,
    // The SDK refuses FIPS together with a custom endpoint; the endpoint names the exact host anyway.
    useFipsEndpoint: settings.fips === true && settings.endpoint === undefined,
  };
}
