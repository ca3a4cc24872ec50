// The reconciler's read side: informer caches seen through an overlay of the operator's own
// recent writes, so a reconcile that runs before the watch has delivered them does not repeat
// them (read-your-writes), and the ClusterView that planPullSecrets consumes.
import type {
  KubernetesObject,
  V1Namespace,
  V1ObjectMeta,
  V1Secret,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import type { ECRPullSecret } from "../api/types.ts";
import type { Clock } from "../clock.ts";
import { dropManagedFields } from "../kube/informer/informer.ts";
import type { StringInterner } from "../kube/interner.ts";
import {
  contentDigest,
  heldContent,
  type ClusterView,
  type ManagedSecretView,
  type NamespaceView,
  type SecretContent,
  type ServiceAccountView,
} from "./plan/desired.ts";
import {
  CONTENT_DIGEST_ANNOTATION,
  EXPIRES_AT_ANNOTATION,
  FIELD_MANAGER,
  IDENTITY_ANNOTATION,
  OWNER_LABEL,
  REFRESHED_AT_ANNOTATION,
} from "./plan/labels.ts";
import { claimantOf, claimedByOther, rivalsOf } from "./plan/ownership.ts";
import { entriesAddedTo } from "./plan/service-accounts.ts";
import type { ResolvedSpec } from "./plan/spec.ts";

/** The part of an informer the cache reads. */
export interface ObjectStore<T> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): T[];
}

interface OverlayEntry<T> {
  object: T | undefined;
  resourceVersion: number;
  expiresAt: number;
}

const overlayTtlMs = 60_000;

function versionOf(obj: KubernetesObject | undefined): number {
  return Number(obj?.metadata?.resourceVersion ?? Number.NaN);
}

/** Whether the informer's copy is the write an entry holds, or newer: a deletion needs it gone or recreated. */
function caughtUp<T extends KubernetesObject>(entry: OverlayEntry<T>, cached: T | undefined): boolean {
  return entry.object === undefined
    ? cached === undefined || versionOf(cached) > entry.resourceVersion
    : versionOf(cached) >= entry.resourceVersion;
}

/** Keeps objects we wrote until the informer shows the same or a newer version. */
class WriteOverlay<T extends KubernetesObject> {
  private readonly entries = new Map<string, OverlayEntry<T>>();
  private readonly clock: Clock;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  record(namespace: string, name: string, object: T | undefined, resourceVersion: number): void {
    if (Number.isNaN(resourceVersion)) {
      return;
    }
    this.entries.set(`${namespace}/${name}`, {
      object,
      resourceVersion,
      expiresAt: this.clock.now() + overlayTtlMs,
    });
  }

  resolve(namespace: string, name: string, cached: T | undefined): T | undefined {
    // Reconciles look up every object; most of the time nothing is pending.
    if (this.entries.size === 0) {
      return cached;
    }
    const key = `${namespace}/${name}`;
    const entry = this.entries.get(key);
    if (entry === undefined) {
      return cached;
    }
    if (this.clock.now() > entry.expiresAt || caughtUp(entry, cached)) {
      this.entries.delete(key);
      return cached;
    }
    return entry.object;
  }

  /** The informer's objects as the reconciler sees them: our written copies instead, our deletions left out. */
  resolveAll(cached: T[]): T[] {
    if (this.entries.size === 0) return cached;
    return cached
      .map((obj) => this.resolve(obj.metadata?.namespace ?? "", obj.metadata?.name ?? "", obj))
      .filter((obj): obj is T => obj !== undefined);
  }

  /** Drops the entry once the informer has caught up with it, so it does not wait for a read. */
  settle(namespace: string, name: string, cached: T | undefined): void {
    const key = `${namespace}/${name}`;
    const entry = this.entries.get(key);
    if (entry !== undefined && caughtUp(entry, cached)) this.entries.delete(key);
  }

  /** The object we wrote, if the entry holds that version of it. */
  written(namespace: string, name: string, resourceVersion: number): T | undefined {
    const entry = this.entries.get(`${namespace}/${name}`);
    return entry?.resourceVersion === resourceVersion ? entry.object : undefined;
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface ClusterStores {
  ecrPullSecrets: ObjectStore<ECRPullSecret>;
  namespaces: ObjectStore<V1Namespace>;
  serviceAccounts: ObjectStore<V1ServiceAccount>;
  secrets: ObjectStore<V1Secret>;
}

export function namespaceView(ns: V1Namespace): NamespaceView {
  return {
    name: ns.metadata?.name ?? "",
    labels: ns.metadata?.labels,
    terminating: ns.status?.phase === "Terminating" || ns.metadata?.deletionTimestamp !== undefined,
  };
}

function serviceAccountView(sa: V1ServiceAccount): ServiceAccountView {
  return {
    namespace: sa.metadata?.namespace ?? "",
    name: sa.metadata?.name ?? "",
    imagePullSecrets: (sa.imagePullSecrets ?? []).map((ref) => ref.name ?? ""),
    added: entriesAddedTo(sa),
  };
}

function managedSecretView(secret: V1Secret): ManagedSecretView {
  const encoded = secret.data?.[".dockerconfigjson"];
  return {
    namespace: secret.metadata?.namespace ?? "",
    name: secret.metadata?.name ?? "",
    type: secret.type,
    labels: secret.metadata?.labels ?? {},
    annotations: secret.metadata?.annotations ?? {},
    ownerUids: (secret.metadata?.ownerReferences ?? []).map((ref) => ref.uid),
    dockerConfigJson: encoded === undefined ? undefined : decodedContent(encoded),
  };
}

/**
 * Whether the cache knows a managed Secret's content. The list and watch of managed Secrets bring
 * metadata alone (a tenth of a pull Secret); ClusterCache.completeSecret completes what it can, and
 * the rest is kept without content until read. The API server gives every Secret a type, so a
 * Secret without one is such a Secret.
 */
export function contentUnknown(secret: V1Secret): boolean {
  return secret.type === undefined;
}

/**
 * Whether only the operator wrote the Secret's `.dockerconfigjson`, by the managedFields the API
 * server keeps: a client that changes it takes it over there. Then the Secret holds the content its
 * CONTENT_DIGEST_ANNOTATION names, since the operator writes both in one request.
 */
export function dataWrittenByOperatorAlone(metadata: V1ObjectMeta): boolean {
  const writers = (metadata.managedFields ?? []).filter((entry) => {
    const data: unknown = (entry.fieldsV1 as Record<string, unknown> | undefined)?.["f:data"];
    return typeof data === "object" && data !== null && "f:.dockerconfigjson" in data;
  });
  return writers.length > 0 && writers.every((entry) => entry.manager === FIELD_MANAGER);
}

/** What a managed Secret holds besides its metadata. */
type HeldData = Pick<V1Secret, "type" | "data">;

/** A content read whole, by its digest, with the annotations written beside it. */
interface DigestedContent extends HeldData {
  annotations: SecretContent;
}

/**
 * Contents read whole, by their CONTENT_DIGEST_ANNOTATION, each kept once it is checked against its
 * digest: a Secret whose digest was written by an older release, or by hand, teaches nothing.
 */
class ContentsByDigest {
  readonly #contents = new Map<string, DigestedContent>();

  learn(secret: V1Secret): void {
    const annotations = secret.metadata?.annotations ?? {};
    const digest = annotations[CONTENT_DIGEST_ANNOTATION];
    if (digest === undefined || this.#contents.has(digest) || contentUnknown(secret)) return;
    const encoded = secret.data?.[".dockerconfigjson"];
    const content = heldContent({
      annotations,
      dockerConfigJson: encoded === undefined ? undefined : decodedContent(encoded),
    });
    if (content === undefined || contentDigest(content) !== digest) return;
    if (this.#contents.size >= internedValues) this.#contents.clear();
    this.#contents.set(digest, { type: secret.type, data: secret.data, annotations: content });
  }

  /** The content a Secret whose data only the operator wrote holds, when its digest was read whole. */
  of(metadata: V1ObjectMeta): HeldData | undefined {
    const annotations = metadata.annotations ?? {};
    const digest = annotations[CONTENT_DIGEST_ANNOTATION];
    const known = digest === undefined ? undefined : this.#contents.get(digest);
    // The same annotations as well: a release that wrote no digest left a stale one beside new ones.
    if (
      known === undefined ||
      annotations[EXPIRES_AT_ANNOTATION] !== known.annotations.expiresAt ||
      annotations[REFRESHED_AT_ANNOTATION] !== known.annotations.refreshedAt ||
      annotations[IDENTITY_ANNOTATION] !== known.annotations.identity
    ) {
      return undefined;
    }
    return { type: known.type, data: known.data };
  }
}

/** Decoded Secret data by its base64, for as many distinct values as the data interner keeps. */
const decoded = new Map<string, string>();

/**
 * The text of a Secret's base64 data. Every reconcile looks at every managed Secret of its CR, and
 * those of one CR all hold the same content, decoded here once per content instead of once per
 * Secret and reconcile.
 */
function decodedContent(encoded: string): string {
  const known = decoded.get(encoded);
  if (known !== undefined) return known;
  if (decoded.size >= internedValues) decoded.clear();
  const text = Buffer.from(encoded, "base64").toString();
  decoded.set(encoded, text);
  return text;
}

/** Distinct Secret data values shared between cached Secrets: one per token content in use. */
export const internedValues = 256;

/**
 * The Secret with each data value replaced by the interner's copy: the managed Secrets of one CR
 * all carry the same token content, which is otherwise parsed and kept once per namespace.
 */
export function internSecretData<T extends KubernetesObject>(obj: T, interner: StringInterner): T {
  const data = (obj as V1Secret).data;
  if (data !== undefined) {
    for (const [key, value] of Object.entries(data)) data[key] = interner.intern(value);
  }
  return obj;
}

export class ClusterCache {
  private readonly stores: ClusterStores;
  private readonly secretOverlay: WriteOverlay<V1Secret>;
  private readonly serviceAccountOverlay: WriteOverlay<V1ServiceAccount>;
  private readonly secretData: StringInterner | undefined;
  private readonly contents = new ContentsByDigest();
  /** Secrets of unknown content with a digest and data only the operator wrote. */
  private readonly vouched = new WeakSet<V1Secret>();

  /** `secretData` shares the data of the Secrets the operator wrote with the informer's copies. */
  constructor(stores: ClusterStores, clock: Clock, secretData?: StringInterner) {
    this.stores = stores;
    this.secretData = secretData;
    this.secretOverlay = new WriteOverlay(clock);
    this.serviceAccountOverlay = new WriteOverlay(clock);
  }

  get ecrPullSecrets(): ObjectStore<ECRPullSecret> {
    return this.stores.ecrPullSecrets;
  }

  // A written object is kept without its managedFields, as the informer keeps it: during a cold
  // converge the watch runs up to a few thousand writes behind, and their managedFields were about
  // a third of what the overlay held.
  recordSecret(secret: V1Secret): void {
    dropManagedFields(secret);
    const { namespace = "", name = "" } = secret.metadata ?? {};
    const kept = this.secretData === undefined ? secret : internSecretData(secret, this.secretData);
    this.secretOverlay.record(namespace, name, kept, versionOf(secret));
    this.contents.learn(kept);
    // The watch may have brought this version, as metadata alone, before the write's answer came.
    const cached = this.stores.secrets.get(name, namespace);
    if (cached !== undefined && contentUnknown(cached) && versionOf(cached) === versionOf(kept)) {
      cached.type = kept.type;
      cached.data = kept.data;
    }
  }

  /**
   * A managed Secret as the informer brought it: whole, or as metadata alone (PartialObjectMetadata,
   * as the managed Secrets are listed and watched), completed with the content the cache knows it
   * holds at that resourceVersion: the operator's write, the copy cached before a relist, or the
   * content of its digest when only the operator wrote its data. Else it is read before planning.
   */
  completeSecret(raw: KubernetesObject): V1Secret {
    if (raw.kind !== "PartialObjectMetadata") return raw;
    const metadata = raw.metadata ?? {};
    const secret: V1Secret = { apiVersion: "v1", kind: "Secret", metadata };
    const { namespace = "", name = "" } = metadata;
    const version = versionOf(raw);
    const cached = this.stores.secrets.get(name, namespace);
    const vouched =
      metadata.annotations?.[CONTENT_DIGEST_ANNOTATION] !== undefined && dataWrittenByOperatorAlone(metadata);
    const held =
      this.secretOverlay.written(namespace, name, version) ??
      (cached !== undefined && !contentUnknown(cached) && versionOf(cached) === version
        ? cached
        : undefined) ??
      (vouched ? this.contents.of(metadata) : undefined);
    if (held !== undefined) {
      secret.type = held.type;
      secret.data = held.data;
    } else if (vouched) {
      this.vouched.add(secret);
    }
    return secret;
  }

  /**
   * Of these Secrets of unknown content, one for each digest among those only the operator wrote:
   * reading it whole (recordSecret) tells the content of the others (completeVouched).
   */
  vouchedSamples(secrets: readonly V1Secret[]): V1Secret[] {
    const byDigest = new Map<string, V1Secret>();
    for (const secret of secrets) {
      const digest = secret.metadata?.annotations?.[CONTENT_DIGEST_ANNOTATION] ?? "";
      if (this.vouched.has(secret) && !byDigest.has(digest)) byDigest.set(digest, secret);
    }
    return [...byDigest.values()];
  }

  /** Completes those of these Secrets whose digest the cache has now read whole; returns the rest. */
  completeVouched(secrets: readonly V1Secret[]): V1Secret[] {
    return secrets.filter((secret) => {
      if (!contentUnknown(secret)) return false;
      const held = this.vouched.has(secret) ? this.contents.of(secret.metadata ?? {}) : undefined;
      if (held === undefined) return true;
      secret.type = held.type;
      secret.data = held.data;
      this.vouched.delete(secret);
      return false;
    });
  }

  /**
   * The managed Secrets a CR's plan reads whose content the cache does not know: those it owns and
   * those of its Secret name. Read them (recordSecret) before planning.
   */
  secretsOfUnknownContent(owner: string, secretName: string, within?: ReadonlySet<string>): V1Secret[] {
    return this.managedSecretsIn(within).filter(
      (s) =>
        contentUnknown(s) && (s.metadata?.labels?.[OWNER_LABEL] === owner || s.metadata?.name === secretName),
    );
  }

  recordSecretDeleted(namespace: string, name: string): void {
    const cached = this.stores.secrets.get(name, namespace);
    this.secretOverlay.record(namespace, name, undefined, versionOf(cached));
  }

  recordServiceAccount(sa: V1ServiceAccount): void {
    dropManagedFields(sa);
    const { namespace = "", name = "" } = sa.metadata ?? {};
    this.serviceAccountOverlay.record(namespace, name, sa, versionOf(sa));
  }

  /** The watch changed this Secret: our written copy goes once the informer holds it. */
  settleSecret(secret: V1Secret): void {
    const { namespace = "", name = "" } = secret.metadata ?? {};
    this.secretOverlay.settle(namespace, name, this.stores.secrets.get(name, namespace));
  }

  /** The watch changed this ServiceAccount: our written copy goes once the informer holds it. */
  settleServiceAccount(sa: V1ServiceAccount): void {
    const { namespace = "", name = "" } = sa.metadata ?? {};
    this.serviceAccountOverlay.settle(namespace, name, this.stores.serviceAccounts.get(name, namespace));
  }

  /** Written objects the overlay still holds, because the watch has not shown them yet. */
  pendingWrites(): number {
    return this.secretOverlay.size + this.serviceAccountOverlay.size;
  }

  secret(namespace: string, name: string): V1Secret | undefined {
    return this.secretOverlay.resolve(namespace, name, this.stores.secrets.get(name, namespace));
  }

  serviceAccount(namespace: string, name: string): V1ServiceAccount | undefined {
    return this.serviceAccountOverlay.resolve(
      namespace,
      name,
      this.stores.serviceAccounts.get(name, namespace),
    );
  }

  serviceAccountsIn(namespace: string): V1ServiceAccount[] {
    return this.serviceAccountOverlay.resolveAll(this.stores.serviceAccounts.list(namespace));
  }

  allServiceAccounts(): V1ServiceAccount[] {
    return this.serviceAccountOverlay.resolveAll(this.stores.serviceAccounts.list());
  }

  namespace(name: string): NamespaceView | undefined {
    const ns = this.stores.namespaces.get(name);
    return ns === undefined ? undefined : namespaceView(ns);
  }

  managedSecrets(): V1Secret[] {
    return this.secretOverlay.resolveAll(this.stores.secrets.list());
  }

  /** The managed Secrets in these namespaces, or in all of them. */
  private managedSecretsIn(within: ReadonlySet<string> | undefined): V1Secret[] {
    if (within === undefined) return this.managedSecrets();
    return [...within].flatMap((namespace) =>
      this.secretOverlay.resolveAll(this.stores.secrets.list(namespace)),
    );
  }

  /**
   * The cluster as one CR's plan sees it, over every namespace or only those `within`. `specOf`
   * resolves the other CRs, for conflicts on the same Secret name (plan/ownership.ts).
   */
  viewFor(
    self: ECRPullSecret,
    specOf: (cr: ECRPullSecret) => ResolvedSpec | undefined,
    within?: ReadonlySet<string>,
  ): ClusterView {
    const claimant = claimantOf(self);
    const rivals = rivalsOf(self, this.stores.ecrPullSecrets.list(), specOf);
    const namespaces = this.stores.namespaces;
    // A reconcile asks for its own Secrets twice (the content to adopt, then what to delete).
    const owned = new Map<string, ManagedSecretView[]>();

    return {
      namespaces: (within === undefined
        ? namespaces.list()
        : [...within].flatMap((name) => namespaces.get(name) ?? [])
      ).map(namespaceView),
      serviceAccounts: (namespace) => this.serviceAccountsIn(namespace).map(serviceAccountView),
      managedSecret: (namespace, name) => {
        const secret = this.secret(namespace, name);
        return secret === undefined ? undefined : managedSecretView(secret);
      },
      ownedSecrets: (owner) => {
        let secrets = owned.get(owner);
        if (secrets === undefined) {
          secrets = this.managedSecretsIn(within)
            .filter((s) => s.metadata?.labels?.[OWNER_LABEL] === owner)
            .map(managedSecretView);
          owned.set(owner, secrets);
        }
        return secrets;
      },
      claimedByOther: (namespace, secretName) => {
        if (rivals.length === 0) {
          return undefined;
        }
        const ns = namespaces.get(namespace);
        if (ns === undefined) {
          return undefined;
        }
        const view = namespaceView(ns);
        const wanting = rivals
          .filter((r) => r.spec.secretName === secretName && r.spec.matchesNamespace(view))
          .map((r) => r.claimant);
        if (wanting.length === 0) {
          return undefined;
        }
        return claimedByOther(
          claimant,
          wanting,
          this.secret(namespace, secretName)?.metadata?.labels?.[OWNER_LABEL],
        );
      },
    };
  }
}
