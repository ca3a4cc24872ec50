// Walks an error's causes, shared by the Kubernetes and AWS error classifiers.

const maxCauseDepth = 8;

/** The error, its `cause`s and the members of any AggregateError (Node reports dual-stack connect failures so). */
export function causeChain(err: unknown): object[] {
  const chain: object[] = [];
  const pending: unknown[] = [err];
  while (pending.length > 0 && chain.length < maxCauseDepth) {
    const next = pending.shift();
    if (typeof next !== "object" || next === null || chain.includes(next)) continue;
    chain.push(next);
    if (next instanceof AggregateError) pending.push(...(next.errors as unknown[]));
    if ("cause" in next) pending.push(next.cause);
  }
  return chain;
}
