// The informer's cache: the objects of one collection by namespace and name, and what changed in
// it, so handlers hear of an object only when its resourceVersion moved.

import type { KubernetesObject } from "@kubernetes/client-node";

export type StoreChange<T> =
  { type: "add"; obj: T } | { type: "update"; obj: T; old: T } | { type: "delete"; obj: T };

/** Objects by namespace and name ("" for cluster-scoped), so a namespace lists in O(its objects). */
export class ObjectStore<T extends KubernetesObject> {
  #byNamespace = new Map<string, Map<string, T>>();
  #size = 0;

  get(name: string, namespace = ""): T | undefined {
    return this.#byNamespace.get(namespace)?.get(name);
  }

  /** Objects in `namespace`, or all objects when it is undefined. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.#byNamespace.get(namespace)?.values() ?? [])];
    const all: T[] = [];
    for (const objects of this.#byNamespace.values()) all.push(...objects.values());
    return all;
  }

  size(): number {
    return this.#size;
  }

  /** Stores `obj`; a change only when it is new or its resourceVersion differs from the stored one. */
  upsert(obj: T): StoreChange<T> | undefined {
    const { name, namespace } = keyOf(obj);
    const old = this.get(name, namespace);
    if (old !== undefined && resourceVersionOf(old) === resourceVersionOf(obj)) return undefined;
    this.#put(obj);
    return old === undefined ? { type: "add", obj } : { type: "update", obj, old };
  }

  /** Removes the object `obj` names; the change carries `obj`, its last state as the server sent it. */
  delete(obj: T): StoreChange<T> | undefined {
    const { name, namespace } = keyOf(obj);
    const objects = this.#byNamespace.get(namespace);
    if (objects?.delete(name) !== true) return undefined;
    if (objects.size === 0) this.#byNamespace.delete(namespace);
    this.#size -= 1;
    return { type: "delete", obj };
  }

  /**
   * Makes the store hold exactly `objects` and returns the differences: adds, updates (only where the
   * resourceVersion changed) and deletes. An unchanged object keeps its stored instance.
   */
  replace(objects: readonly T[]): StoreChange<T>[] {
    const previous = this.#byNamespace;
    this.#byNamespace = new Map();
    this.#size = 0;
    const changes: StoreChange<T>[] = [];
    for (const obj of objects) {
      const { name, namespace } = keyOf(obj);
      const old = previous.get(namespace)?.get(name);
      if (old === undefined) {
        this.#put(obj);
        changes.push({ type: "add", obj });
      } else if (resourceVersionOf(old) === resourceVersionOf(obj)) {
        this.#put(old);
      } else {
        this.#put(obj);
        changes.push({ type: "update", obj, old });
      }
      previous.get(namespace)?.delete(name);
    }
    for (const remaining of previous.values()) {
      for (const old of remaining.values()) changes.push({ type: "delete", obj: old });
    }
    return changes;
  }

  #put(obj: T): void {
    const { name, namespace } = keyOf(obj);
    let objects = this.#byNamespace.get(namespace);
    if (objects === undefined) {
      objects = new Map();
      this.#byNamespace.set(namespace, objects);
    }
    if (!objects.has(name)) this.#size += 1;
    objects.set(name, obj);
  }
}

function keyOf(obj: KubernetesObject): { name: string; namespace: string } {
  return { name: obj.metadata?.name ?? "", namespace: obj.metadata?.namespace ?? "" };
}

export function resourceVersionOf(obj: KubernetesObject): string | undefined {
  return obj.metadata?.resourceVersion;
}
