// What a unit test of the controller gives the cache and the writer in place of a cluster: fixed
// informer stores, and a connection that fails the test if a dry run reaches for the API server.
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";

import type { ObjectStore } from "../../src/controller/cluster-cache.ts";
import type { ClusterConnection } from "../../src/kube/kubeconfig/cluster-access.ts";

/** An informer's store over these objects, looked up by name and namespace. */
export function fixedStore<T extends KubernetesObject>(objects: T[]): ObjectStore<T> {
  return {
    get: (name, namespace) =>
      objects.find((o) => o.metadata?.name === name && (o.metadata.namespace ?? "") === (namespace ?? "")),
    list: (namespace) =>
      objects.filter((o) => namespace === undefined || o.metadata?.namespace === namespace),
  };
}

/** A cluster connection that fails the test when used: a dry run must not reach the cluster. */
export const unreachableCluster: ClusterConnection = {
  getCurrentCluster: () => assert.fail("a dry run reached the cluster"),
  applyToHTTPSOptions: () => assert.fail("a dry run reached the cluster"),
};
