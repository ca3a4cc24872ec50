// One ECR token per (identity, kind, region), shared by every ECRPullSecret: minted once however
// many callers ask at the same time, renewed at about half its lifetime (or sooner when a caller's
// refreshInterval says so), and the last good token kept when a renewal fails.

import { createHash } from "node:crypto";
import type { Clock } from "../clock.ts";
import type { CredentialSource } from "./credentials.ts";
import { ecrPublicRegion, mintPrivateToken, mintPublicToken } from "./token.ts";
import type { EcrClientPool, EcrToken, TokenKind } from "./token.ts";

export interface TokenTarget {
  readonly kind: TokenKind;
  /** The region to mint in; ECR Public tokens come from us-east-1 whatever is given. */
  readonly region: string;
  /** Mint a private token through ECR's FIPS endpoint (for dkr.ecr-fips hosts). */
  readonly fips?: boolean;
}

/** Tells targets apart: kind, FIPS and region (ECR Public tokens come from us-east-1 whatever is given). */
export function targetKey(target: TokenTarget): string {
  const region = target.kind === "public" ? ecrPublicRegion : target.region;
  const fips = target.kind === "private" && target.fips === true ? "-fips" : "";
  return `${target.kind}${fips}:${region}`;
}

export type MintToken = (source: CredentialSource, target: TokenTarget) => Promise<EcrToken>;

export type MintResult = "success" | "error";

export interface TokenCacheOptions {
  readonly clock: Clock;
  readonly mint: MintToken;
  /**
   * Uniform in [0, 1) for a token; picks its jitter. The default derives it from the token itself,
   * so a restarted operator that adopts a token schedules (and reports) the same refresh time.
   */
  readonly random?: (token: EcrToken) => number;
  /** Called after every mint, for metrics. */
  readonly onMint?: (target: TokenTarget, result: MintResult, durationMs: number) => void;
  /**
   * Called after invalidate once no mint of those sources is under way any more, e.g. to close the
   * SDK clients of rotated-away credentials without cutting a request short.
   */
  readonly onInvalidate?: (sourceKeyPrefix: string) => void;
}

export interface GetTokenOptions {
  /** Upper bound on the age of the token returned (the CR's refreshInterval). */
  readonly maxAgeMs?: number;
}

/** No token is renewed sooner than this after minting, whatever its lifetime or maxAgeMs, so nothing hot-loops. */
export const minRefreshDelayMs = 60_000;
/** Refresh time varies by up to this fraction either way, so tokens minted together do not renew together. */
export const refreshJitter = 0.1;

interface Entry {
  readonly sourceKey: string;
  readonly token: EcrToken;
}

interface Flight {
  readonly sourceKey: string;
  readonly promise: Promise<EcrToken>;
}

export class TokenCache {
  readonly #clock: Clock;
  readonly #mint: MintToken;
  readonly #random: (token: EcrToken) => number;
  readonly #onMint: TokenCacheOptions["onMint"];
  readonly #onInvalidate: TokenCacheOptions["onInvalidate"];
  readonly #entries = new Map<string, Entry>();
  readonly #flights = new Map<string, Flight>();
  /** Every mint under way, also those whose source was invalidated meanwhile. */
  readonly #minting = new Set<Flight>();
  readonly #jitter = new WeakMap<EcrToken, number>();

  constructor(options: TokenCacheOptions) {
    this.#clock = options.clock;
    this.#mint = options.mint;
    this.#random = options.random ?? tokenFraction;
    this.#onMint = options.onMint;
    this.#onInvalidate = options.onInvalidate;
  }

  /**
   * The cached token while it is not yet due for refresh, otherwise a new one. Rejects with the
   * mint's error (an AwsError from the real mint) without touching the last good token.
   */
  get(source: CredentialSource, target: TokenTarget, options: GetTokenOptions = {}): Promise<EcrToken> {
    const key = cacheKey(source, target);
    const cached = this.#entries.get(key)?.token;
    if (cached !== undefined && this.#clock.now() < this.refreshAt(cached, options.maxAgeMs)) {
      return Promise.resolve(cached);
    }
    return this.#mintOnce(key, source, target);
  }

  /**
   * Adopts a token minted earlier (e.g. read back from the Secrets an earlier process wrote), unless
   * one is cached or being minted already. Returns whether it was taken.
   */
  seed(source: CredentialSource, target: TokenTarget, token: EcrToken): boolean {
    const key = cacheKey(source, target);
    if (this.#entries.has(key) || this.#flights.has(key)) return false;
    this.#entries.set(key, { sourceKey: source.key, token });
    return true;
  }

  /** The last token minted successfully, however old; check expiresAt before using it. */
  peek(source: CredentialSource, target: TokenTarget): EcrToken | undefined {
    return this.#entries.get(cacheKey(source, target))?.token;
  }

  /**
   * When to replace the token: half its lifetime, varied by ±refreshJitter (fixed per token), capped
   * at maxAgeMs and at least minRefreshDelayMs after minting.
   */
  refreshAt(token: EcrToken, maxAgeMs?: number): number {
    const lifetime = token.expiresAt - token.mintedAt;
    const jittered = (lifetime / 2) * this.#jitterOf(token);
    const delay = Math.max(minRefreshDelayMs, Math.min(jittered, maxAgeMs ?? Number.POSITIVE_INFINITY));
    return token.mintedAt + Math.round(delay);
  }

  /**
   * Forgets the tokens of every source whose key starts with the prefix, including roles assumed on
   * top of it; a mint already under way for one of them is not stored.
   */
  invalidate(sourceKeyPrefix: string): void {
    for (const [key, entry] of this.#entries) {
      if (entry.sourceKey.startsWith(sourceKeyPrefix)) this.#entries.delete(key);
    }
    for (const [key, flight] of this.#flights) {
      if (flight.sourceKey.startsWith(sourceKeyPrefix)) this.#flights.delete(key);
    }
    const onInvalidate = this.#onInvalidate;
    if (onInvalidate !== undefined) {
      this.#whenIdle(sourceKeyPrefix, () => {
        onInvalidate(sourceKeyPrefix);
      });
    }
  }

  /** Runs `then` as soon as no mint of a source whose key starts with the prefix is under way. */
  #whenIdle(sourceKeyPrefix: string, then: () => void): void {
    const busy = [...this.#minting].filter((flight) => flight.sourceKey.startsWith(sourceKeyPrefix));
    if (busy.length === 0) {
      then();
      return;
    }
    void Promise.allSettled(busy.map((flight) => flight.promise)).then(() => {
      this.#whenIdle(sourceKeyPrefix, then);
    });
  }

  #mintOnce(key: string, source: CredentialSource, target: TokenTarget): Promise<EcrToken> {
    const inFlight = this.#flights.get(key);
    if (inFlight !== undefined) return inFlight.promise;
    const started = this.#clock.now();
    const settle = (result: MintResult): boolean => {
      this.#onMint?.(target, result, this.#clock.now() - started);
      this.#minting.delete(flight);
      const current = this.#flights.get(key) === flight;
      if (current) this.#flights.delete(key);
      return current;
    };
    const promise = (async () => this.#mint(source, target))().then(
      (token) => {
        if (settle("success")) this.#entries.set(key, { sourceKey: source.key, token });
        return token;
      },
      (err: unknown) => {
        settle("error");
        throw err;
      },
    );
    const flight: Flight = { sourceKey: source.key, promise };
    this.#flights.set(key, flight);
    this.#minting.add(flight);
    return promise;
  }

  #jitterOf(token: EcrToken): number {
    let factor = this.#jitter.get(token);
    if (factor === undefined) {
      factor = 1 + (this.#random(token) * 2 - 1) * refreshJitter;
      this.#jitter.set(token, factor);
    }
    return factor;
  }
}

/** A stable fraction in [0, 1) from a token's content: the same token always gets the same jitter. */
function tokenFraction(token: EcrToken): number {
  const digest = createHash("sha256").update(`${token.region}|${token.mintedAt}|${token.password}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

function cacheKey(source: CredentialSource, target: TokenTarget): string {
  return `${source.key}|${targetKey(target)}`;
}

export interface EcrTokenCacheOptions {
  readonly clock: Clock;
  /** The SDK clients to mint with; the cache closes those of credentials it invalidates. */
  readonly clients: EcrClientPool;
  /** The ECR and ECR Public API endpoints, e.g. Config.awsEndpoints; left out: the SDK's default. */
  readonly endpoints?: { readonly ecr?: string | undefined; readonly ecrPublic?: string | undefined };
  readonly requestTimeoutMs?: number;
  readonly random?: (token: EcrToken) => number;
  readonly onMint?: TokenCacheOptions["onMint"];
}

/** A TokenCache that mints with ECR and ECR Public through the given SDK clients. */
export function createTokenCache(options: EcrTokenCacheOptions): TokenCache {
  const { clock, clients, requestTimeoutMs } = options;
  return new TokenCache({
    clock,
    random: options.random,
    onMint: options.onMint,
    mint: (source, target) =>
      target.kind === "public"
        ? mintPublicToken(source, {
            clock,
            clients,
            requestTimeoutMs,
            endpoint: options.endpoints?.ecrPublic,
          })
        : mintPrivateToken(source, target.region, {
            clock,
            clients,
            requestTimeoutMs,
            endpoint: options.endpoints?.ecr,
            fips: target.fips === true,
          }),
    onInvalidate: (prefix) => {
      clients.forget(prefix);
    },
  });
}
