// The .dockerconfigjson content for one CR: one token per (identity, kind, region) from the shared
// token cache, written under each registry host. Each token fails and recovers on its own: a host
// whose refresh fails keeps its last good entry while that is valid and loses it once it expires, a
// host that never had a token is left out, and the other hosts are refreshed as usual.
import { createHash } from "node:crypto";
import type { CredentialSource } from "../aws/credentials.ts";
import { AwsError, classifyAwsError } from "../aws/errors.ts";
import { targetKey, type TokenCache, type TokenTarget } from "../aws/token-cache.ts";
import type { EcrToken } from "../aws/token.ts";
import type { Clock } from "../clock.ts";
import type { Observer } from "../observability/observer.ts";
import { buildDockerConfigJson, hostsOf, parseAuths, type RegistryCredential } from "./plan/dockerconfig.ts";
import type { SecretContent } from "./plan/desired.ts";
import type { CredentialResolver } from "./credentials-store.ts";
import type { RegistryBinding, ResolvedSpec } from "./plan/spec.ts";
import { isoSeconds, isTokenProblem, type RegistryState, type TokenProblem } from "./plan/status.ts";

/** The token content of one CR, and how each of its registries' tokens fared. */
export interface ContentResult {
  /** What every managed Secret should hold; undefined leaves them as they are. */
  content: SecretContent | undefined;
  /** One per registry host, in the order of spec.registries. */
  registries: RegistryState[];
  /** Why not every token is fresh; undefined when all are. */
  problem: TokenProblem | undefined;
  /** When the first fresh token is due; undefined when none is. */
  refreshAt: number | undefined;
  /** Registries whose entry the Secrets lose with this content, their token having expired. */
  droppedEntries: RegistryState[];
  /** A token was minted by this call. */
  minted: boolean;
}

/** Supplies the .dockerconfigjson content (tokens) a CR needs. */
export interface ContentSource {
  /** `existing`: what the CR's Secrets hold now, which may be adopted instead of minting. */
  contentFor(spec: ResolvedSpec, existing: SecretContent | undefined): Promise<ContentResult>;
}

function endpointHost(token: EcrToken): string | undefined {
  if (token.kind === "public") {
    return "public.ecr.aws";
  }
  return token.proxyEndpoint?.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
}

/** The host a binding writes: the listed one, or (without `registries`) the token's own endpoint. */
function hostOf(binding: RegistryBinding, token: EcrToken | undefined): string | undefined {
  return binding.host ?? (token === undefined ? undefined : endpointHost(token));
}

/** A one-way hash of a credential source's key: safe to write into an annotation. */
export function identityOf(source: CredentialSource): string {
  return createHash("sha256").update(source.key).digest("hex").slice(0, 16);
}

/**
 * Content from the tokens at hand, one per target; hosts whose target has no token are left out.
 * Undefined when no host is left: the Secrets are then left as they are, never emptied.
 */
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
    const host = hostOf(binding, token);
    if (token === undefined || host === undefined) continue;
    credentials.push({ host, username: token.username, password: token.password });
    expiresAt = Math.min(expiresAt, token.expiresAt);
    refreshedAt = Math.max(refreshedAt, token.mintedAt);
  }
  if (credentials.length === 0) return undefined;
  return {
    dockerConfigJson: buildDockerConfigJson(credentials),
    expiresAt: isoSeconds(expiresAt),
    refreshedAt: isoSeconds(refreshedAt),
    identity,
  };
}

/**
 * The tokens inside content an earlier run wrote, per target, for the hosts it holds. The Secret's
 * annotations give one time for all of them: the latest mint and the earliest expiry, so a token
 * read back never outlives its real expiry. Expired tokens are included; callers check.
 */
export function tokensFromContent(spec: ResolvedSpec, content: SecretContent): Map<string, EcrToken> {
  const tokens = new Map<string, EcrToken>();
  const mintedAt = Date.parse(content.refreshedAt);
  const expiresAt = Date.parse(content.expiresAt);
  if (Number.isNaN(mintedAt) || Number.isNaN(expiresAt)) return tokens;
  const entries = parseAuths(content.dockerConfigJson);
  const hosts = Object.keys(entries);
  const disagreeing = new Set<string>();
  for (const binding of spec.registries) {
    // Without registries the one host is the token's own endpoint.
    const host = binding.host ?? (spec.registries.length === 1 && hosts.length === 1 ? hosts[0] : undefined);
    const entry = host === undefined ? undefined : entries[host];
    if (host === undefined || typeof entry?.username !== "string" || typeof entry.password !== "string") {
      continue;
    }
    const key = targetKey(binding.target);
    const known = tokens.get(key);
    if (known !== undefined) {
      if (known.password !== entry.password) disagreeing.add(key);
      continue;
    }
    tokens.set(key, {
      kind: binding.target.kind,
      region: binding.target.region,
      username: entry.username,
      password: entry.password,
      proxyEndpoint: binding.target.kind === "private" ? `https://${host}` : undefined,
      mintedAt,
      expiresAt,
    });
  }
  // Hosts of one token that hold different passwords were not written by this operator as they are.
  for (const key of disagreeing) tokens.delete(key);
  return tokens;
}

/** What became of one token this call. */
interface TargetOutcome {
  target: TokenTarget;
  /** The token the Secrets carry for the target: a fresh one, or the last good one while it is valid. */
  entry: EcrToken | undefined;
  /** The newest token known for the target: the entry, or the last one after it expired. */
  last: EcrToken | undefined;
  /** Why refreshing failed; undefined when the entry is fresh. */
  problem: TokenProblem | undefined;
  /** The token is new to this call. */
  minted: boolean;
}

/** The one of two tokens that stays valid longer. */
function longerLived(a: EcrToken | undefined, b: EcrToken | undefined): EcrToken | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.expiresAt > a.expiresAt ? b : a;
}

function failedTarget(
  target: TokenTarget,
  last: EcrToken | undefined,
  cause: AwsError | TokenProblem,
  now: number,
): TargetOutcome {
  const valid = last !== undefined && last.expiresAt > now;
  let problem: TokenProblem;
  if (!(cause instanceof AwsError)) {
    problem = cause;
  } else if (last !== undefined && !valid) {
    problem = {
      reason: "TokenExpired",
      message: `the token expired at ${isoSeconds(last.expiresAt)} and refreshing failed: ${cause.message}`,
    };
  } else {
    problem = {
      reason: cause.kind === "AwsAuth" ? "AwsAuthFailed" : "TokenRefreshFailed",
      message: cause.message,
    };
  }
  return {
    target,
    entry: valid ? last : undefined,
    last,
    problem,
    minted: false,
  };
}

function stateOf(outcome: TargetOutcome): RegistryState["state"] {
  if (outcome.problem === undefined) return "Fresh";
  if (outcome.entry !== undefined) return "Kept";
  return outcome.last === undefined ? "Missing" : "Expired";
}

/** The hosts a target's token serves, as a list for messages. */
function hostsText(spec: ResolvedSpec, outcome: TargetOutcome): string {
  const key = targetKey(outcome.target);
  const hosts = spec.registries
    .filter((binding) => targetKey(binding.target) === key)
    .map((binding) => hostOf(binding, outcome.last))
    .filter((host) => host !== undefined);
  return hosts.length > 0 ? hosts.join(", ") : `the registry in ${outcome.target.region}`;
}

const stateText: Record<Exclude<RegistryState["state"], "Fresh">, (token: EcrToken | undefined) => string> = {
  Kept: (token) => `last good token kept until ${isoSeconds(token?.expiresAt ?? 0)}`,
  Expired: () => "entry removed",
  Missing: () => "no token yet",
};

/** Why Ready is False because of tokens: as before when every token fails, PartiallyRefreshed when some do. */
function problemOf(spec: ResolvedSpec, outcomes: readonly TargetOutcome[]): TokenProblem | undefined {
  const failing = outcomes.filter((o) => o.problem !== undefined);
  const [only] = failing;
  if (only?.problem === undefined) return undefined;
  if (failing.length === outcomes.length) {
    if (failing.length === 1) return only.problem;
    const reasons = new Set(failing.map((o) => o.problem?.reason));
    return {
      reason: reasons.size === 1 ? only.problem.reason : "TokenRefreshFailed",
      message: failing.map((o) => `${hostsText(spec, o)}: ${o.problem?.message ?? ""}`).join("; "),
    };
  }
  const failingHosts = spec.registries.filter((binding) =>
    failing.some((o) => targetKey(o.target) === targetKey(binding.target)),
  ).length;
  const details = failing.map((o) => {
    const state = stateOf(o);
    const how = state === "Fresh" ? "" : ` (${stateText[state](o.entry)})`;
    return `${hostsText(spec, o)}${how}: ${o.problem?.message ?? ""}`;
  });
  return {
    reason: "PartiallyRefreshed",
    message:
      `${spec.registries.length - failingHosts} of ${spec.registries.length} registries refreshed; ` +
      `failing: ${details.join("; ")}`,
  };
}

function registryStates(spec: ResolvedSpec, outcomes: readonly TargetOutcome[]): RegistryState[] {
  const byTarget = new Map(outcomes.map((o) => [targetKey(o.target), o]));
  const states: RegistryState[] = [];
  for (const binding of spec.registries) {
    const outcome = byTarget.get(targetKey(binding.target));
    const host = outcome === undefined ? undefined : hostOf(binding, outcome.last);
    if (outcome === undefined || host === undefined) continue;
    states.push({
      host,
      state: stateOf(outcome),
      expiresAt: outcome.last?.expiresAt,
      mintedAt: outcome.last?.mintedAt,
      problem: outcome.problem,
    });
  }
  return states;
}

export interface TokenContentSourceOptions {
  credentials: CredentialResolver;
  tokens: TokenCache;
  clock: Clock;
  /** Told of each AWS error, for metrics. */
  observer: Observer;
}

export function createTokenContentSource({
  credentials,
  tokens,
  clock,
  observer,
}: TokenContentSourceOptions): ContentSource {
  function result(
    spec: ResolvedSpec,
    outcomes: readonly TargetOutcome[],
    content: SecretContent | undefined,
    existing: SecretContent | undefined,
  ): ContentResult {
    const fresh = outcomes.flatMap((o) =>
      o.problem === undefined && o.entry !== undefined ? [o.entry] : [],
    );
    const registries = registryStates(spec, outcomes);
    // An expired token's hosts are never in the new content: only those the Secrets held are dropped.
    const held = new Set(
      content === undefined || existing === undefined ? [] : hostsOf(existing.dockerConfigJson),
    );
    return {
      content,
      registries,
      problem: problemOf(spec, outcomes),
      refreshAt:
        fresh.length === 0
          ? undefined
          : Math.min(...fresh.map((token) => tokens.refreshAt(token, spec.refreshIntervalMs))),
      droppedEntries: registries.filter((r) => r.state === "Expired" && held.has(r.host)),
      minted: outcomes.some((o) => o.minted),
    };
  }

  return {
    async contentFor(spec, existing): Promise<ContentResult> {
      await credentials.prepare?.(spec);
      const source = credentials.resolve(spec);
      const written =
        existing === undefined ? new Map<string, EcrToken>() : tokensFromContent(spec, existing);
      if (isTokenProblem(source)) {
        // Nothing can be minted: each host is reported as the Secrets hold it, and nothing is written.
        const now = clock.now();
        const outcomes = spec.targets.map((t) => failedTarget(t, written.get(targetKey(t)), source, now));
        return { ...result(spec, outcomes, undefined, existing), problem: source };
      }
      const identity = identityOf(source);
      // After a restart or a change of leader, the tokens in the Secrets are as good as new ones
      // until they are due: adopting them saves an AWS call and a rewrite of every Secret.
      if (existing?.identity === identity) {
        const now = clock.now();
        for (const target of spec.targets) {
          const token = written.get(targetKey(target));
          if (token !== undefined && token.expiresAt > now && token.mintedAt <= now) {
            tokens.seed(source, target, token);
          }
        }
      }
      const outcomes = await Promise.all(
        spec.targets.map(async (target): Promise<TargetOutcome> => {
          const before = tokens.peek(source, target);
          try {
            const token = await tokens.get(source, target, { maxAgeMs: spec.refreshIntervalMs });
            const key = targetKey(target);
            if (spec.registries.some((b) => targetKey(b.target) === key && hostOf(b, token) === undefined)) {
              const noHost: TokenProblem = {
                reason: "TokenRefreshFailed",
                message: "the token came without a registry endpoint; list spec.registries",
              };
              return failedTarget(target, undefined, noHost, clock.now());
            }
            return {
              target,
              entry: token,
              last: token,
              problem: undefined,
              minted: token !== before,
            };
          } catch (err) {
            // The last good token: minted by this process, or read back from what the Secrets hold
            // (also when they were written with other credentials, so that nothing working is dropped).
            const last = longerLived(tokens.peek(source, target), written.get(targetKey(target)));
            const error = classifyAwsError(err);
            observer.observe({ type: "AwsError", kind: error.kind });
            return failedTarget(target, last, error, clock.now());
          }
        }),
      );
      const entries = new Map(
        outcomes.flatMap((o) => (o.entry === undefined ? [] : [[targetKey(o.target), o.entry] as const])),
      );
      // Entries only carried over from the Secrets keep the identity they were written with, so a
      // failure right after a change of credentials rewrites nothing.
      const carriedOnly = [...entries].every(([key, token]) => written.get(key) === token);
      const contentIdentity = carriedOnly && existing !== undefined ? existing.identity : identity;
      return result(spec, outcomes, contentFromTokens(spec, entries, contentIdentity), existing);
    },
  };
}
