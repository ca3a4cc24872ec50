// Turns an ECRPullSecret's spec into what reconcile works with: compiled namespace matcher,
// ServiceAccount choice, the tokens it needs and the registry hosts each token serves. Every check
// the CRD schema cannot make happens here, with a message naming the field.
import { parseRefreshInterval } from "../../api/duration.ts";
import { isInvalidInput } from "../../api/invalid-input.ts";
import { compileNamespaceMatcher, type NamespaceMatcher } from "../../api/namespace-match.ts";
import { parseRegistryHost } from "../../api/registry-host.ts";
import { DEFAULT_SERVICE_ACCOUNTS, type AssumeRole, type ECRPullSecret } from "../../api/types.ts";
import { targetKey, type TokenTarget } from "../../aws/token-cache.ts";

/** A registry host and the token it takes; `host` undefined means "the token's own endpoint". */
export interface RegistryBinding {
  host: string | undefined;
  target: TokenTarget;
}

export type CredentialsRef = { kind: "default" } | { kind: "secret"; namespace: string; name: string };

export type ServiceAccountChoice = { all: true } | { all: false; names: ReadonlySet<string> };

export interface ResolvedSpec {
  secretName: string;
  matchesNamespace: NamespaceMatcher;
  serviceAccounts: ServiceAccountChoice;
  registries: RegistryBinding[];
  /** Distinct tokens needed: one per (kind, region). */
  targets: TokenTarget[];
  refreshIntervalMs: number | undefined;
  suspend: boolean;
  credentials: CredentialsRef;
  assumeRole: AssumeRole | undefined;
}

export interface SpecProblem {
  reason: "InvalidSpec" | "CredentialsNotTrusted";
  message: string;
}

export interface SpecContext {
  /** Region used when a CR names neither `registries` nor `region`. */
  defaultRegion: string | undefined;
  /** Namespaces a CR may take credentials from. */
  trustedNamespaces: ReadonlySet<string>;
}

export function resolveSpec(cr: ECRPullSecret, context: SpecContext): ResolvedSpec | SpecProblem {
  const spec = cr.spec;
  const invalid = (message: string): SpecProblem => ({ reason: "InvalidSpec", message });

  const matchesNamespace = compileNamespaceMatcher(spec);
  if (isInvalidInput(matchesNamespace)) {
    return invalid(matchesNamespace.message);
  }

  let refreshIntervalMs: number | undefined;
  if (spec.refreshInterval !== undefined) {
    const parsed = parseRefreshInterval(spec.refreshInterval);
    if (isInvalidInput(parsed)) {
      return invalid(`spec.refreshInterval: ${parsed.message}`);
    }
    refreshIntervalMs = parsed;
  }

  const registries: RegistryBinding[] = [];
  for (const host of spec.registries ?? []) {
    const parsed = parseRegistryHost(host);
    if (isInvalidInput(parsed)) {
      return invalid(`spec.registries: ${parsed.message}`);
    }
    const target: TokenTarget =
      parsed.kind === "private" && parsed.fips
        ? { kind: "private", region: parsed.region, fips: true }
        : { kind: parsed.kind, region: parsed.region };
    registries.push({ host, target });
  }
  if (registries.length === 0) {
    const region = spec.region ?? context.defaultRegion;
    if (region === undefined) {
      return invalid("set spec.region or spec.registries: the operator has no default region");
    }
    registries.push({ host: undefined, target: { kind: "private", region } });
  }
  const targets = new Map<string, TokenTarget>();
  for (const { target } of registries) {
    targets.set(targetKey(target), target);
  }

  let credentials: CredentialsRef = { kind: "default" };
  const ref = spec.aws?.credentialsSecretRef;
  if (ref !== undefined) {
    if (!context.trustedNamespaces.has(ref.namespace)) {
      return {
        reason: "CredentialsNotTrusted",
        message:
          `spec.aws.credentialsSecretRef: namespace "${ref.namespace}" is not trusted for credentials ` +
          `(trusted: ${[...context.trustedNamespaces].sort().join(", ")})`,
      };
    }
    credentials = { kind: "secret", namespace: ref.namespace, name: ref.name };
  }

  const names = spec.serviceAccounts ?? DEFAULT_SERVICE_ACCOUNTS;
  const serviceAccounts: ServiceAccountChoice = names.includes("*")
    ? { all: true }
    : { all: false, names: new Set(names) };

  return {
    secretName: spec.secretName ?? cr.metadata.name ?? "",
    matchesNamespace,
    serviceAccounts,
    registries,
    targets: [...targets.values()],
    refreshIntervalMs,
    suspend: spec.suspend === true,
    credentials,
    assumeRole: spec.aws?.assumeRole,
  };
}

export function isSpecProblem(value: ResolvedSpec | SpecProblem): value is SpecProblem {
  return "reason" in value;
}
