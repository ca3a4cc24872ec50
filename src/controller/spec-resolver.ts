// Resolved specs cached per CR generation: a spec is parsed and its matchers compiled once, not
// on every reconcile or every conflict check by another CR.
import type { ECRPullSecret } from "../api/types.ts";
import {
  isSpecProblem,
  resolveSpec,
  type ResolvedSpec,
  type SpecContext,
  type SpecProblem,
} from "./plan/spec.ts";

export class SpecResolver {
  private readonly context: SpecContext;
  private readonly cache = new Map<string, { generation: number; result: ResolvedSpec | SpecProblem }>();

  constructor(context: SpecContext) {
    this.context = context;
  }

  resolve(cr: ECRPullSecret): ResolvedSpec | SpecProblem {
    const uid = cr.metadata.uid ?? cr.metadata.name ?? "";
    const generation = cr.metadata.generation ?? 0;
    const hit = this.cache.get(uid);
    if (hit !== undefined && hit.generation === generation) {
      return hit.result;
    }
    const result = resolveSpec(cr, this.context);
    this.cache.set(uid, { generation, result });
    return result;
  }

  /** The resolved spec, or undefined when the spec is invalid. */
  resolved(cr: ECRPullSecret): ResolvedSpec | undefined {
    const result = this.resolve(cr);
    return isSpecProblem(result) ? undefined : result;
  }

  forget(uid: string): void {
    this.cache.delete(uid);
  }
}
