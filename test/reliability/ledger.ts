// Witnesses for "nothing lost": watches of the managed Secrets and of ServiceAccounts, kept by the
// test process during a fault, that record every deletion, emptied Secret, re-created object and
// ServiceAccount entry that disappears. They use the operator's supervised Informer, which relists
// after an outage, so a deletion missed while the API server was down still shows (as a DELETED
// from the relist, or as a new uid).
import type { KubeConfig, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import { MANAGED_SECRETS_SELECTOR, OWNER_LABEL } from "../../src/controller/plan/labels.ts";
import { Informer } from "../../src/kube/informer/informer.ts";

function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

/** The registry hosts a pull Secret holds credentials for; none when its content is unreadable. */
export function registryHosts(secret: V1Secret): string[] {
  const encoded = secret.data?.[".dockerconfigjson"] ?? "";
  try {
    const parsed = JSON.parse(Buffer.from(encoded, "base64").toString()) as { auths?: object } | null;
    return Object.keys(parsed?.auths ?? {});
  } catch (err) {
    if (err instanceof SyntaxError) return [];
    throw err;
  }
}

/** Why a pull Secret's content is unusable, or undefined when it holds credentials for every host. */
export function emptiness(secret: V1Secret): string | undefined {
  const encoded = secret.data?.[".dockerconfigjson"];
  if (encoded === undefined || encoded === "") return "no .dockerconfigjson";
  let parsed: { auths?: Record<string, { password?: string }> };
  try {
    parsed = JSON.parse(Buffer.from(encoded, "base64").toString()) as typeof parsed;
  } catch {
    return ".dockerconfigjson is not JSON";
  }
  const auths = Object.values(parsed.auths ?? {});
  if (auths.length === 0) return "no registry in auths";
  if (auths.some((a) => (a.password ?? "") === "")) return "a registry without a password";
  return undefined;
}

export interface SecretLedgerOptions {
  kubeConfig: KubeConfig;
  /** Only Secrets of this name count; default all managed Secrets. */
  secretName?: string;
}

/** Every managed Secret seen, with the ways one was lost. */
export class SecretLedger {
  readonly deleted: string[] = [];
  readonly emptied: string[] = [];
  readonly recreated: string[] = [];
  /** Owner label changes of a Secret that existed before (flapping between CRs). */
  readonly ownerChanges: { key: string; from: string; to: string; at: number }[] = [];
  /** MODIFIED events per Secret key. */
  readonly modifications = new Map<string, number>();
  /** Registry entries that an update took out of a Secret, as "namespace/name host". */
  readonly droppedEntries: string[] = [];
  readonly #firstUid = new Map<string, string>();
  readonly #informer: Informer<V1Secret>;
  readonly #secretName: string | undefined;

  constructor(options: SecretLedgerOptions) {
    this.#secretName = options.secretName;
    this.#informer = new Informer<V1Secret>({
      name: "test-ledger-secrets",
      kubeConfig: options.kubeConfig,
      path: "/api/v1/secrets",
      labelSelector: MANAGED_SECRETS_SELECTOR,
      // Short enough that a stalled watch of the witness itself never hides a deletion for long.
      watchTimeoutSeconds: 20,
      stallGraceMs: 5_000,
    });
    this.#informer.addHandlers({
      onAdd: (s) => {
        this.#seen(s);
      },
      onUpdate: (s, old) => {
        if (!this.#counts(s)) return;
        const key = keyOf(s);
        this.modifications.set(key, (this.modifications.get(key) ?? 0) + 1);
        const from = old.metadata?.labels?.[OWNER_LABEL] ?? "";
        const to = s.metadata?.labels?.[OWNER_LABEL] ?? "";
        if (from !== to) this.ownerChanges.push({ key, from, to, at: Date.now() });
        const hosts = registryHosts(s);
        for (const host of registryHosts(old)) {
          if (!hosts.includes(host)) this.droppedEntries.push(`${key} ${host}`);
        }
        this.#seen(s);
      },
      onDelete: (s) => {
        if (this.#counts(s)) this.deleted.push(keyOf(s));
      },
    });
  }

  #counts(s: V1Secret): boolean {
    return this.#secretName === undefined || s.metadata?.name === this.#secretName;
  }

  #seen(s: V1Secret): void {
    if (!this.#counts(s)) return;
    const key = keyOf(s);
    const uid = s.metadata?.uid ?? "";
    const first = this.#firstUid.get(key);
    if (first === undefined) this.#firstUid.set(key, uid);
    else if (first !== uid) this.recreated.push(key);
    if (emptiness(s) !== undefined) this.emptied.push(key);
  }

  async start(): Promise<void> {
    this.#informer.start();
    await this.#informer.waitForSync();
  }

  /** Managed Secrets (of secretName) in the cache now. */
  present(): V1Secret[] {
    return this.#informer.list().filter((s) => this.#counts(s));
  }

  /** Secrets lost in any way: deleted, emptied or re-created. */
  lost(): number {
    return this.deleted.length + this.emptied.length + this.recreated.length;
  }

  stop(): Promise<void> {
    return this.#informer.stop();
  }
}

export interface ServiceAccountLedgerOptions {
  kubeConfig: KubeConfig;
  /** Entries whose loss counts, e.g. the operator's Secret name and a foreign entry. */
  watched: (entry: string) => boolean;
}

/** Records every watched imagePullSecrets entry that disappears from a ServiceAccount. */
export class ServiceAccountLedger {
  readonly lostEntries: string[] = [];
  readonly deleted: string[] = [];
  readonly #informer: Informer<V1ServiceAccount>;
  readonly #watched: (entry: string) => boolean;

  constructor(options: ServiceAccountLedgerOptions) {
    this.#watched = options.watched;
    this.#informer = new Informer<V1ServiceAccount>({
      name: "test-ledger-serviceaccounts",
      kubeConfig: options.kubeConfig,
      path: "/api/v1/serviceaccounts",
      watchTimeoutSeconds: 20,
      stallGraceMs: 5_000,
    });
    this.#informer.addHandlers({
      onUpdate: (sa, old) => {
        const now = new Set(entriesOf(sa));
        for (const entry of entriesOf(old)) {
          if (this.#watched(entry) && !now.has(entry)) this.lostEntries.push(`${keyOf(sa)}:${entry}`);
        }
      },
      onDelete: (sa) => {
        if (entriesOf(sa).some((e) => this.#watched(e))) this.deleted.push(keyOf(sa));
      },
    });
  }

  async start(): Promise<void> {
    this.#informer.start();
    await this.#informer.waitForSync();
  }

  list(): V1ServiceAccount[] {
    return this.#informer.list();
  }

  lost(): number {
    return this.lostEntries.length + this.deleted.length;
  }

  stop(): Promise<void> {
    return this.#informer.stop();
  }
}

export function entriesOf(sa: V1ServiceAccount): string[] {
  return (sa.imagePullSecrets ?? []).map((ref) => ref.name ?? "");
}
