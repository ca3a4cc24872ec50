// What the next reconcile of each CR has to look at. Most changes a watch brings concern one
// namespace: a Namespace, a ServiceAccount or a managed Secret in it. A CR queued for such changes
// alone can be planned over those namespaces instead of all of them (see Reconciler). Anything
// else that queues a CR (the CR itself, credentials, a resync, a retry, a timer) asks for a full
// pass, and so does a CR queued with nothing noted.

/** Namespaces noted for one CR beyond which a full pass is the cheaper plan. */
export const maxScopedNamespaces = 256;

export class PassScopes {
  readonly #namespaces = new Map<string, Set<string>>();
  readonly #full = new Set<string>();

  /** Notes that something in `namespace` changed for the CR `name`. */
  touch(name: string, namespace: string): void {
    if (this.#full.has(name)) return;
    let touched = this.#namespaces.get(name);
    if (touched === undefined) {
      touched = new Set();
      this.#namespaces.set(name, touched);
    }
    touched.add(namespace);
    if (touched.size > maxScopedNamespaces) this.full(name);
  }

  /** Notes that the CR `name` needs a pass over every namespace. */
  full(name: string): void {
    this.#full.add(name);
    this.#namespaces.delete(name);
  }

  /**
   * What the next reconcile of `name` has to cover, and forgets it: the namespaces touched since
   * the last reconcile, or undefined for every namespace.
   */
  take(name: string): ReadonlySet<string> | undefined {
    const full = this.#full.delete(name);
    const touched = this.#namespaces.get(name);
    this.#namespaces.delete(name);
    return full ? undefined : touched;
  }

  /** Forgets a CR that is gone. */
  forget(name: string): void {
    this.#full.delete(name);
    this.#namespaces.delete(name);
  }
}
