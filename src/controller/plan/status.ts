// The status an ECRPullSecret reports, computed from what a reconcile found. Pure, so that the
// same observations always give the same status and an unchanged status is never written.
import { limits } from "../../api/crd.ts";
import type { Condition, ECRPullSecretStatus, NamespaceFailure, RegistryStatus } from "../../api/types.ts";
import { compareStrings } from "../../order.ts";

export type ReadyReason =
  | "Synced"
  | "PartiallySynced"
  | "PartiallyRefreshed"
  | "SecretConflict"
  | "TokenRefreshFailed"
  | "AwsAuthFailed"
  | "TokenExpired"
  | "InvalidSpec"
  | "CredentialsNotTrusted"
  | "CredentialsInvalid"
  | "Suspended";

export interface TokenTimes {
  expiresAt: string;
  refreshedAt: string;
  /** Undefined while a refresh fails: the retry follows the backoff. */
  nextRefreshAt: string | undefined;
}

export interface TokenProblem {
  reason:
    "TokenRefreshFailed" | "AwsAuthFailed" | "TokenExpired" | "CredentialsInvalid" | "PartiallyRefreshed";
  message: string;
}

/** Tells a token problem from what a lookup returns when it succeeds (credentials, a token). */
export function isTokenProblem(value: object): value is TokenProblem {
  return "reason" in value;
}

/**
 * What the Secrets hold for one registry host. Fresh: its token was refreshed as due. Kept:
 * refreshing failed and the last good entry stays while it is valid. Expired: refreshing failed and
 * the last entry has expired, so it is left out. Missing: it never had a token, so it is left out.
 */
export type RegistryTokenState = "Fresh" | "Kept" | "Expired" | "Missing";

export interface RegistryState {
  host: string;
  state: RegistryTokenState;
  /** Of the token in the Secrets (Fresh, Kept) or of the one that expired; undefined when Missing. */
  expiresAt: number | undefined;
  mintedAt: number | undefined;
  /** Why refreshing failed; undefined when Fresh. */
  problem: TokenProblem | undefined;
}

export type Outcome =
  | { kind: "invalid"; reason: "InvalidSpec" | "CredentialsNotTrusted"; message: string }
  | { kind: "suspended" }
  | {
      kind: "reconciled";
      desired: number;
      synced: number;
      failures: NamespaceFailure[];
      token: TokenTimes | undefined;
      tokenProblem: TokenProblem | undefined;
      registries: readonly RegistryState[];
    };

/** Status times in whole seconds, as the API server would store them anyway. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function registryStatus(registry: RegistryState): RegistryStatus {
  const status: RegistryStatus = { host: registry.host };
  if (registry.expiresAt !== undefined) status.tokenExpiresAt = isoSeconds(registry.expiresAt);
  if (registry.mintedAt !== undefined) status.lastRefreshTime = isoSeconds(registry.mintedAt);
  if (registry.problem !== undefined) {
    status.lastError = {
      reason: registry.problem.reason,
      message: registry.problem.message.slice(0, limits.failureMessageLength),
    };
  }
  return status;
}

function condition(
  previous: readonly Condition[] | undefined,
  type: string,
  status: Condition["status"],
  reason: string,
  message: string,
  generation: number,
  now: string,
): Condition {
  const before = previous?.find((c) => c.type === type);
  const lastTransitionTime =
    before !== undefined && before.status === status ? before.lastTransitionTime : now;
  return { type, status, reason, message, observedGeneration: generation, lastTransitionTime };
}

function readyFor(outcome: Outcome): { status: Condition["status"]; reason: ReadyReason; message: string } {
  switch (outcome.kind) {
    case "invalid":
      return { status: "False", reason: outcome.reason, message: outcome.message };
    case "suspended":
      return {
        status: "False",
        reason: "Suspended",
        message: "spec.suspend is true: nothing is refreshed or written",
      };
    case "reconciled": {
      if (outcome.tokenProblem !== undefined) {
        return {
          status: "False",
          reason: outcome.tokenProblem.reason,
          message: outcome.tokenProblem.message,
        };
      }
      const { desired, synced, failures } = outcome;
      if (failures.length === 0 && synced === desired) {
        return { status: "True", reason: "Synced", message: `${synced}/${desired} namespaces synced` };
      }
      const conflictsOnly = failures.length > 0 && failures.every((f) => f.reason === "SecretConflict");
      const names = failures
        .slice(0, 5)
        .map((f) => f.namespace)
        .join(", ");
      const more = failures.length > 5 ? ` and ${failures.length - 5} more` : "";
      const detail = failures.length > 0 ? `; failing: ${names}${more}` : "";
      return {
        status: "False",
        reason: conflictsOnly ? "SecretConflict" : "PartiallySynced",
        message: `${synced}/${desired} namespaces synced${detail}`,
      };
    }
  }
}

function tokenCondition(outcome: Outcome): { status: Condition["status"]; reason: string; message: string } {
  if (outcome.kind !== "reconciled") {
    return {
      status: "Unknown",
      reason: outcome.kind === "suspended" ? "Suspended" : outcome.reason,
      message: "",
    };
  }
  if (outcome.tokenProblem !== undefined) {
    return { status: "False", reason: outcome.tokenProblem.reason, message: outcome.tokenProblem.message };
  }
  if (outcome.token === undefined) {
    return { status: "Unknown", reason: "NoToken", message: "no token minted yet" };
  }
  return { status: "True", reason: "TokenValid", message: `token valid until ${outcome.token.expiresAt}` };
}

export function buildStatus(
  previous: ECRPullSecretStatus | undefined,
  generation: number,
  outcome: Outcome,
  now: string,
): ECRPullSecretStatus {
  const ready = readyFor(outcome);
  const token = tokenCondition(outcome);
  const conditions = [
    condition(previous?.conditions, "Ready", ready.status, ready.reason, ready.message, generation, now),
    condition(previous?.conditions, "TokenValid", token.status, token.reason, token.message, generation, now),
  ];
  const status: ECRPullSecretStatus = { observedGeneration: generation, conditions };
  if (outcome.kind === "reconciled") {
    status.namespaces = { desired: outcome.desired, synced: outcome.synced };
    status.synced = `${outcome.synced}/${outcome.desired}`;
    if (outcome.registries.length > 0) {
      status.registries = outcome.registries.slice(0, limits.registries).map(registryStatus);
    }
    status.failures = outcome.failures.slice(0, limits.failures).map((f) => ({
      namespace: f.namespace,
      reason: f.reason,
      message: f.message.slice(0, limits.failureMessageLength),
    }));
    const times = outcome.token;
    if (times !== undefined) {
      status.tokenExpiresAt = times.expiresAt;
      status.lastRefreshTime = times.refreshedAt;
      if (times.nextRefreshAt !== undefined) status.nextRefreshTime = times.nextRefreshAt;
    } else {
      // Keep reporting the last known token while refreshes fail.
      if (previous?.tokenExpiresAt !== undefined) status.tokenExpiresAt = previous.tokenExpiresAt;
      if (previous?.lastRefreshTime !== undefined) status.lastRefreshTime = previous.lastRefreshTime;
    }
  }
  return status;
}

/**
 * The merge patch that turns `previous` into `next`: a merge patch keeps the fields it does not
 * mention, so the ones to drop are named with null.
 */
export function statusPatch(previous: ECRPullSecretStatus | undefined, next: ECRPullSecretStatus): object {
  const removals = Object.keys(previous ?? {})
    .filter((key) => !(key in next))
    .map((key): [string, null] => [key, null]);
  return { ...Object.fromEntries(removals), ...next };
}

/** Deep equality on the JSON shape, so an unchanged status is not written again. */
export function sameStatus(a: ECRPullSecretStatus | undefined, b: ECRPullSecretStatus): boolean {
  return JSON.stringify(normalise(a)) === JSON.stringify(normalise(b));
}

function normalise(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(normalise);
  }
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => compareStrings(a, b))
        .map(([k, v]) => [k, normalise(v)]),
    );
  }
  return value;
}
