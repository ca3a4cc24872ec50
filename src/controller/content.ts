// The .dockerconfigjson content for one CR: the tokens its registries need, from the shared
// token cache, written under each registry host. When minting fails the last good tokens are
// offered instead, so that what works keeps working.
import { createHash } from "node:crypto";
import type { ECRPullSecret } from "../api/types.ts";
import type { CredentialSource } from "../aws/credentials.ts";
import { classifyAwsError } from "../aws/errors.ts";
import type { TokenCache } from "../aws/token-cache.ts";
import type { EcrToken } from "../aws/token.ts";
import type { Clock } from "../kube/clock.ts";
import { buildDockerConfigJson, type RegistryCredential } from "./dockerconfig.ts";
import type { SecretContent } from "./desired.ts";
import type { ContentResult, ContentSource } from "./reconciler.ts";
import { targetKey, type ResolvedSpec } from "./spec.ts";
import type { TokenProblem } from "./status.ts";

/** Resolves the credentials a CR uses; a problem is reported on the CR as it is. */
export interface CredentialResolver {
  /** Waits (briefly) until what `resolve` needs for this spec has been read. */
  prepare?(spec: ResolvedSpec): Promise<void>;
  resolve(cr: ECRPullSecret, spec: ResolvedSpec): CredentialSource | TokenProblem;
}

function toIso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function endpointHost(token: EcrToken): string | undefined {
  if (token.kind === "public") {
    return "public.ecr.aws";
  }
  return token.proxyEndpoint?.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
}

/** A one-way hash of a credential source's key: safe to write into an annotation. */
export function identityOf(source: CredentialSource): string {
  return createHash("sha256").update(source.key).digest("hex").slice(0, 16);
}

/** Content from one token per target; undefined if a token lacks the host it must serve. */
export function contentFromTokens(
  spec: ResolvedSpec,
  tokens: ReadonlyMap<string, EcrToken>,
  identity: string,
): SecretContent | undefined {
  const credentials: RegistryCredential[] = [];
  let expiresAt = Number.POSITIVE_INFINITY;
  let refreshedAt = 0;
  for (const binding of spec.registries) {
    const token = tokens.get(targetKey(binding.target));
    const host = binding.host ?? (token === undefined ? undefined : endpointHost(token));
    if (token === undefined || host === undefined) {
      return undefined;
    }
    credentials.push({ host, username: token.username, password: token.password });
    expiresAt = Math.min(expiresAt, token.expiresAt);
    refreshedAt = Math.max(refreshedAt, token.mintedAt);
  }
  return {
    dockerConfigJson: buildDockerConfigJson(credentials),
    expiresAt: toIso(expiresAt),
    refreshedAt: toIso(refreshedAt),
    identity,
  };
}

/**
 * The tokens inside content an earlier run wrote, one per target, when that content was minted by
 * the same identity and has not expired; undefined when anything does not fit.
 */
export function tokensFromContent(
  spec: ResolvedSpec,
  content: SecretContent,
  identity: string,
  now: number,
): Map<string, EcrToken> | undefined {
  const mintedAt = Date.parse(content.refreshedAt);
  const expiresAt = Date.parse(content.expiresAt);
  if (content.identity !== identity || !(expiresAt > now) || !(mintedAt <= now)) {
    return undefined;
  }
  let auths: Record<string, { username?: unknown; password?: unknown }>;
  try {
    auths = (JSON.parse(content.dockerConfigJson) as { auths: typeof auths }).auths;
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
  const hosts = Object.keys(auths);
  const tokens = new Map<string, EcrToken>();
  for (const binding of spec.registries) {
    // Without registries the one host is the token's own endpoint.
    const host = binding.host ?? (spec.registries.length === 1 && hosts.length === 1 ? hosts[0] : undefined);
    const entry = host === undefined ? undefined : auths[host];
    if (host === undefined || typeof entry?.username !== "string" || typeof entry.password !== "string") {
      return undefined;
    }
    const key = targetKey(binding.target);
    const token: EcrToken = {
      kind: binding.target.kind,
      region: binding.target.region,
      username: entry.username,
      password: entry.password,
      proxyEndpoint: binding.target.kind === "private" ? `https://${host}` : undefined,
      mintedAt,
      expiresAt,
    };
    const known = tokens.get(key);
    if (known !== undefined && known.password !== token.password) return undefined;
    tokens.set(key, known ?? token);
  }
  return tokens;
}

export interface TokenContentSourceOptions {
  credentials: CredentialResolver;
  tokens: TokenCache;
  clock: Clock;
}

export function createTokenContentSource({
  credentials,
  tokens,
  clock,
}: TokenContentSourceOptions): ContentSource {
  function lastGood(source: CredentialSource | undefined, spec: ResolvedSpec): SecretContent | undefined {
    if (source === undefined) {
      return undefined;
    }
    const found = new Map<string, EcrToken>();
    for (const target of spec.targets) {
      const token = tokens.peek(source, target);
      if (token !== undefined) found.set(targetKey(target), token);
    }
    return contentFromTokens(spec, found, identityOf(source));
  }

  function problemFor(err: unknown, last: SecretContent | undefined): TokenProblem {
    const error = classifyAwsError(err);
    if (last !== undefined && Date.parse(last.expiresAt) <= clock.now()) {
      return {
        reason: "TokenExpired",
        message: `the token expired at ${last.expiresAt} and refreshing failed: ${error.message}`,
      };
    }
    if (error.kind === "AwsAuth") {
      return { reason: "AwsAuthFailed", message: error.message };
    }
    return { reason: "TokenRefreshFailed", message: error.message };
  }

  return {
    async contentFor(cr, spec, existing): Promise<ContentResult> {
      await credentials.prepare?.(spec);
      const source = credentials.resolve(cr, spec);
      if ("reason" in source) {
        return { ok: false, problem: source, lastGood: undefined };
      }
      const identity = identityOf(source);
      // After a restart or a change of leader, the tokens in the Secrets are as good as new ones
      // until they are due: adopting them saves an AWS call and a rewrite of every Secret.
      const adoptable =
        existing === undefined ? undefined : tokensFromContent(spec, existing, identity, clock.now());
      for (const target of adoptable === undefined ? [] : spec.targets) {
        const token = adoptable?.get(targetKey(target));
        if (token !== undefined) tokens.seed(source, target, token);
      }
      const before = new Map(spec.targets.map((t) => [targetKey(t), tokens.peek(source, t)]));
      try {
        const minted = await Promise.all(
          spec.targets.map(
            async (target) =>
              [
                targetKey(target),
                await tokens.get(source, target, { maxAgeMs: spec.refreshIntervalMs }),
              ] as const,
          ),
        );
        const byTarget = new Map(minted);
        const content = contentFromTokens(spec, byTarget, identity);
        if (content === undefined) {
          return {
            ok: false,
            problem: {
              reason: "TokenRefreshFailed",
              message: "the token came without a registry endpoint; list spec.registries",
            },
            lastGood: undefined,
          };
        }
        const refreshAt = Math.min(
          ...minted.map(([, token]) => tokens.refreshAt(token, spec.refreshIntervalMs)),
        );
        const fresh = minted.some(([key, token]) => before.get(key) !== token);
        return { ok: true, content, refreshAt, minted: fresh };
      } catch (err) {
        const last = lastGood(source, spec);
        return {
          ok: false,
          problem: problemFor(err, last),
          lastGood: last,
          awsErrorKind: classifyAwsError(err).kind,
        };
      }
    },
  };
}
