// The driver's view of the cluster, kept by watches (the operator's own Informer class): namespaces,
// ServiceAccounts and dockerconfigjson Secrets. Scenarios wait on conditions per namespace, checked
// again on every watch event of that namespace, and learn when each namespace got there.
import { performance } from "node:perf_hooks";
import type {
  KubeConfig,
  KubernetesObject,
  V1Namespace,
  V1Secret,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import { Informer } from "../src/kube/informer/informer.ts";

/** A condition on one namespace, evaluated against the watch caches. */
export type NamespaceCheck = (namespace: string) => boolean;

export interface WaitResult {
  /** performance.now() when the last namespace met the condition. */
  doneAt: number;
  /** performance.now() when each namespace met the condition. */
  at: Map<string, number>;
}

interface Waiter {
  pending: Set<string>;
  check: NamespaceCheck;
  at: Map<string, number>;
  complete: () => void;
  fail: (err: Error) => void;
}

export class ClusterWatch {
  readonly namespaces: Informer<V1Namespace>;
  readonly serviceAccounts: Informer<V1ServiceAccount>;
  readonly secrets: Informer<V1Secret>;
  readonly #waiters = new Set<Waiter>();
  readonly #errors: string[] = [];

  constructor(kubeConfig: KubeConfig) {
    const informer = <T extends KubernetesObject>(
      name: string,
      path: string,
      fieldSelector?: string,
    ): Informer<T> =>
      new Informer<T>({
        name,
        kubeConfig,
        path,
        fieldSelector,
        hooks: {
          onError: (err) => {
            this.#errors.push(`${name}: ${err.message}`);
          },
        },
      });
    this.namespaces = informer<V1Namespace>("namespaces", "/api/v1/namespaces");
    this.serviceAccounts = informer<V1ServiceAccount>("serviceaccounts", "/api/v1/serviceaccounts");
    // Pull Secrets of the operator and of the baseline alike; never the unmanaged (Opaque) Secrets.
    this.secrets = informer<V1Secret>("secrets", "/api/v1/secrets", "type=kubernetes.io/dockerconfigjson");
    const notify = (obj: KubernetesObject): void => {
      const namespace = obj.metadata?.namespace ?? obj.metadata?.name ?? "";
      this.#notify(namespace, performance.now());
    };
    for (const source of [
      this.namespaces,
      this.serviceAccounts,
      this.secrets,
    ] as Informer<KubernetesObject>[]) {
      source.addHandlers({ onAdd: notify, onUpdate: notify, onDelete: notify });
    }
  }

  async start(): Promise<void> {
    this.namespaces.start();
    this.serviceAccounts.start();
    this.secrets.start();
    await Promise.all([
      this.namespaces.waitForSync(),
      this.serviceAccounts.waitForSync(),
      this.secrets.waitForSync(),
    ]);
  }

  async stop(): Promise<void> {
    for (const waiter of [...this.#waiters]) waiter.fail(new Error("the cluster watch stopped"));
    await Promise.all([this.namespaces.stop(), this.serviceAccounts.stop(), this.secrets.stop()]);
  }

  /** Watch errors seen so far (the informers retry on their own). */
  errors(): readonly string[] {
    return this.#errors;
  }

  secret(namespace: string, name: string): V1Secret | undefined {
    return this.secrets.get(name, namespace);
  }

  /** True when the namespace has the Secret and its ServiceAccount lists it. */
  hasPullSecret(namespace: string, secretName: string, serviceAccount = "default"): boolean {
    if (this.secrets.get(secretName, namespace) === undefined) return false;
    const sa = this.serviceAccounts.get(serviceAccount, namespace);
    return (sa?.imagePullSecrets ?? []).some((ref) => ref.name === secretName);
  }

  /**
   * Resolves once `check` holds for every namespace, each checked now and again on each watch event
   * in it; rejects after `timeoutMs` naming what is still missing.
   */
  waitFor(
    namespaces: Iterable<string>,
    check: NamespaceCheck,
    timeoutMs: number,
    what: string,
  ): Promise<WaitResult> {
    const now = performance.now();
    const at = new Map<string, number>();
    const pending = new Set<string>();
    for (const namespace of namespaces) {
      if (check(namespace)) at.set(namespace, now);
      else pending.add(namespace);
    }
    if (pending.size === 0) return Promise.resolve({ doneAt: now, at });
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pending,
        check,
        at,
        complete: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve({ doneAt: Math.max(...at.values()), at });
        },
        fail: (err) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        const sample = [...pending].slice(0, 5).join(", ");
        const watchErrors =
          this.#errors.length === 0 ? "" : `; watch errors: ${this.#errors.slice(-3).join("; ")}`;
        waiter.fail(
          new Error(
            `${what}: ${pending.size} namespaces not there after ${timeoutMs} ms (${sample})${watchErrors}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  #notify(namespace: string, now: number): void {
    for (const waiter of this.#waiters) {
      if (!waiter.pending.has(namespace) || !waiter.check(namespace)) continue;
      waiter.pending.delete(namespace);
      waiter.at.set(namespace, now);
      if (waiter.pending.size === 0) waiter.complete();
    }
  }
}
