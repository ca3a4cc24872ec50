// The .dockerconfigjson content for one CR: the tokens its registries need, from the shared
// token cache, written under each registry host. When minting fails the last good tokens are
// offered instead, so that what works keeps working.
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

/** Content from one token per target; undefined if a token lacks the host it must serve. */
export function contentFromTokens(
  spec: ResolvedSpec,
  tokens: ReadonlyMap<string, EcrToken>,
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
  };
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
    return contentFromTokens(spec, found);
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
    async contentFor(cr, spec): Promise<ContentResult> {
      const source = credentials.resolve(cr, spec);
      if ("reason" in source) {
        return { ok: false, problem: source, lastGood: undefined };
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
        const content = contentFromTokens(spec, byTarget);
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
