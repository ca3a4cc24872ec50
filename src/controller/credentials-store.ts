// Which AWS identity a CR uses: its own credentials Secret (from a trusted namespace), the
// operator's --credentials-secret, or the SDK default chain; optionally an assumed role on top.
// Credential Secrets are watched one by one (by name), so a rotation takes effect at once and
// the operator never lists Secrets it does not need.
import type { V1Secret } from "@kubernetes/client-node";
import {
  assumeRoleSource,
  parseCredentialsSecret,
  staticSource,
  type CredentialSource,
} from "../aws/credentials.ts";
import { isInvalidInput } from "../api/invalid-input.ts";
import { Informer } from "../kube/informer/informer.ts";
import type { ClusterConnection } from "../kube/kubeconfig/cluster-access.ts";
import type { ResolvedSpec } from "./plan/spec.ts";
import { isTokenProblem, type TokenProblem } from "./plan/status.ts";

const prepareTimeoutMs = 10_000;

export interface SecretRef {
  namespace: string;
  name: string;
}

export interface CredentialStoreOptions {
  kubeConfig: ClusterConnection;
  /** The operator's default credentials Secret; without it the default chain is used. */
  defaultSecret: SecretRef | undefined;
  defaultChain: () => CredentialSource;
  /** STS client options for assumed roles (endpoint, region). */
  stsOptions: { endpoint?: string; region: string };
  /** Called when a watched credentials Secret changes. */
  onChange: (ref: SecretRef) => void;
  /**
   * Called with the key of an identity no watched Secret holds any more (its keys were rotated or
   * removed), so that its tokens and SDK clients can go; roles assumed on top share the prefix.
   */
  onRetired: (sourceKeyPrefix: string) => void;
}

/** Resolves the credentials a CR uses; a problem is reported on the CR as it is. */
export interface CredentialResolver {
  /** Waits (briefly) until what `resolve` needs for this spec has been read. */
  prepare?(spec: ResolvedSpec): Promise<void>;
  resolve(spec: ResolvedSpec): CredentialSource | TokenProblem;
}

export class CredentialStore implements CredentialResolver {
  private readonly options: CredentialStoreOptions;
  private readonly watches = new Map<string, Informer<V1Secret>>();
  private readonly sources = new Map<string, CredentialSource>();
  /** The identity (source key) each watched Secret holds now, by namespace/name. */
  private readonly held = new Map<string, string>();
  private chain: CredentialSource | undefined;

  constructor(options: CredentialStoreOptions) {
    this.options = options;
  }

  /** A credentials Secret named for the first time is read before the reconcile goes on. */
  async prepare(spec: ResolvedSpec): Promise<void> {
    const ref = spec.credentials.kind === "secret" ? spec.credentials : this.options.defaultSecret;
    if (ref === undefined) return;
    const informer = this.watch(ref);
    if (informer.hasSynced()) return;
    try {
      await informer.waitForSync(AbortSignal.timeout(prepareTimeoutMs));
    } catch (err) {
      // Not read yet: resolve() reports it and the reconcile is retried with backoff.
      if (!(err instanceof Error)) throw err;
    }
  }

  resolve(spec: ResolvedSpec): CredentialSource | TokenProblem {
    const ref = spec.credentials.kind === "secret" ? spec.credentials : this.options.defaultSecret;
    const base = ref === undefined ? (this.chain ??= this.options.defaultChain()) : this.fromSecret(ref);
    if (isTokenProblem(base)) {
      return base;
    }
    const role = spec.assumeRole;
    if (role === undefined) {
      return base;
    }
    const key = `${base.key}|${role.roleArn}|${role.externalId ?? ""}|${role.sessionName ?? ""}|${role.durationSeconds ?? ""}`;
    let source = this.sources.get(key);
    if (source === undefined) {
      source = assumeRoleSource(base, role, this.options.stsOptions);
      this.sources.set(key, source);
    }
    return source;
  }

  /** Starts watching the Secrets of `refs` ahead of the first reconcile that needs them. */
  watch(ref: SecretRef): Informer<V1Secret> {
    const key = `${ref.namespace}/${ref.name}`;
    let informer = this.watches.get(key);
    if (informer === undefined) {
      informer = new Informer<V1Secret>({
        name: `credentials:${key}`,
        kubeConfig: this.options.kubeConfig,
        path: `/api/v1/namespaces/${ref.namespace}/secrets`,
        fieldSelector: `metadata.name=${ref.name}`,
      });
      const changed = (secret: V1Secret | undefined): void => {
        this.hold(key, secret);
        this.options.onChange(ref);
      };
      informer.addHandlers({
        onAdd: changed,
        onUpdate: changed,
        onDelete: () => {
          changed(undefined);
        },
      });
      informer.start();
      this.watches.set(key, informer);
    }
    return informer;
  }

  /** Records the identity a Secret holds now, and retires the one it held before once no Secret holds that. */
  private hold(secretKey: string, secret: V1Secret | undefined): void {
    const keys = secret === undefined ? undefined : parseCredentialsSecret(secret.data);
    const identity = keys === undefined || isInvalidInput(keys) ? undefined : staticSource(keys).key;
    const previous = this.held.get(secretKey);
    if (identity === undefined) this.held.delete(secretKey);
    else this.held.set(secretKey, identity);
    if (previous === undefined || previous === identity || [...this.held.values()].includes(previous)) return;
    for (const key of this.sources.keys()) {
      if (key.startsWith(previous)) this.sources.delete(key);
    }
    this.options.onRetired(previous);
  }

  private fromSecret(ref: SecretRef): CredentialSource | TokenProblem {
    const informer = this.watch(ref);
    const where = `credentials Secret ${ref.namespace}/${ref.name}`;
    if (!informer.hasSynced()) {
      return { reason: "CredentialsInvalid", message: `waiting to read the ${where}` };
    }
    const secret = informer.get(ref.name, ref.namespace);
    if (secret === undefined) {
      return { reason: "CredentialsInvalid", message: `the ${where} does not exist` };
    }
    const keys = parseCredentialsSecret(secret.data);
    if (isInvalidInput(keys)) {
      return { reason: "CredentialsInvalid", message: `the ${where} is not usable: ${keys.message}` };
    }
    const candidate = staticSource(keys);
    const known = this.sources.get(candidate.key);
    if (known !== undefined) {
      return known;
    }
    this.sources.set(candidate.key, candidate);
    return candidate;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.watches.values()].map((informer) => informer.stop()));
    this.watches.clear();
  }
}
