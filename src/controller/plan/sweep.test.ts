import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import type { ECRPullSecret } from "../../api/types.ts";
import { ADDED_PULL_SECRETS_ANNOTATION, OWNER_LABEL } from "./labels.ts";
import { isSpecProblem, resolveSpec, type ResolvedSpec } from "./spec.ts";
import { planSweep } from "./sweep.ts";

function cr(name: string, uid: string, namespaces: string[], deleting = false): ECRPullSecret {
  return {
    apiVersion: "ecr-creds-refresher.io/v1alpha1",
    kind: "ECRPullSecret",
    metadata: { name, uid, ...(deleting ? { deletionTimestamp: new Date(0) } : {}) },
    spec: { secretName: name, namespaces },
  };
}

function sa(namespace: string, name: string, entries: string[], added: string[]): V1ServiceAccount {
  return {
    metadata: {
      namespace,
      name,
      annotations: added.length > 0 ? { [ADDED_PULL_SECRETS_ANNOTATION]: added.join(",") } : {},
    },
    imagePullSecrets: entries.map((n) => ({ name: n })),
  };
}

function secret(namespace: string, name: string, ownerUid: string): V1Secret {
  return {
    metadata: {
      namespace,
      name,
      labels: { [OWNER_LABEL]: name },
      ownerReferences: [
        { apiVersion: "ecr-creds-refresher.io/v1alpha1", kind: "ECRPullSecret", name, uid: ownerUid },
      ],
    },
  };
}

/** A Secret labelled by hand for a CR to adopt: our labels, no owner reference yet. */
function labelledForAdoption(namespace: string, name: string, owner: string): V1Secret {
  return { metadata: { namespace, name, labels: { [OWNER_LABEL]: owner } } };
}

const context = { defaultRegion: "eu-west-1", trustedNamespaces: new Set(["ecr-system"]) };
const specOf = (resource: ECRPullSecret): ResolvedSpec | undefined => {
  const resolved = resolveSpec(resource, context);
  return isSpecProblem(resolved) ? undefined : resolved;
};
const namespace = (name: string): { name: string; labels: Record<string, string>; terminating: boolean } => ({
  name,
  labels: {},
  terminating: false,
});

describe("planSweep", () => {
  const cases: {
    name: string;
    crs: ECRPullSecret[];
    serviceAccounts: V1ServiceAccount[];
    secrets: V1Secret[];
    edits: string[];
    deletes: string[];
  }[] = [
    {
      name: "removes an entry we added whose CR is gone",
      crs: [],
      serviceAccounts: [sa("a", "default", ["theirs", "gone"], ["gone"])],
      secrets: [],
      edits: ["a/default -gone"],
      deletes: [],
    },
    {
      name: "keeps an entry a live CR still claims",
      crs: [cr("live", "u1", ["a"])],
      serviceAccounts: [sa("a", "default", ["live"], ["live"])],
      secrets: [secret("a", "live", "u1")],
      edits: [],
      deletes: [],
    },
    {
      name: "never removes an entry the operator did not add",
      crs: [],
      serviceAccounts: [sa("a", "default", ["gone"], [])],
      secrets: [],
      edits: [],
      deletes: [],
    },
    {
      name: "removes an entry when the live CR no longer targets the namespace",
      crs: [cr("live", "u1", ["b"])],
      serviceAccounts: [sa("a", "default", ["live"], ["live"])],
      secrets: [],
      edits: ["a/default -live"],
      deletes: [],
    },
    {
      name: "deletes a managed Secret whose owner no longer exists",
      crs: [cr("other", "u2", ["a"])],
      serviceAccounts: [],
      secrets: [secret("a", "gone", "u-gone"), secret("a", "other", "u2")],
      edits: [],
      deletes: ["a/gone"],
    },
    {
      name: "keeps a Secret labelled for adoption before its CR exists",
      crs: [],
      serviceAccounts: [sa("a", "default", ["aws-registry"], [])],
      secrets: [labelledForAdoption("a", "aws-registry", "ecr-pull")],
      edits: [],
      deletes: [],
    },
    {
      name: "keeps a Secret labelled for adoption while its CR has not written its owner reference",
      crs: [cr("ecr-pull", "u5", ["a"])],
      serviceAccounts: [],
      secrets: [labelledForAdoption("a", "aws-registry", "ecr-pull")],
      edits: [],
      deletes: [],
    },
    {
      name: "keeps a labelled Secret that only something else owns",
      crs: [],
      serviceAccounts: [],
      secrets: [
        {
          metadata: {
            namespace: "a",
            name: "theirs",
            labels: { [OWNER_LABEL]: "gone" },
            ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "x", uid: "u-cm" }],
          },
        },
      ],
      edits: [],
      deletes: [],
    },
    {
      name: "deletes a managed Secret whose ECRPullSecret owners are all gone, next to other owners",
      crs: [],
      serviceAccounts: [],
      secrets: [
        {
          metadata: {
            namespace: "a",
            name: "gone",
            labels: { [OWNER_LABEL]: "gone" },
            ownerReferences: [
              { apiVersion: "v1", kind: "ConfigMap", name: "x", uid: "u-cm" },
              {
                apiVersion: "ecr-creds-refresher.io/v1alpha1",
                kind: "ECRPullSecret",
                name: "gone",
                uid: "u-gone",
              },
            ],
          },
        },
      ],
      edits: [],
      deletes: ["a/gone"],
    },
    {
      name: "drops the entries of a CR being deleted, and leaves its Secret to the finalizer",
      crs: [cr("leaving", "u3", ["a"], true)],
      serviceAccounts: [sa("a", "default", ["leaving"], ["leaving"])],
      secrets: [secret("a", "leaving", "u3")],
      edits: ["a/default -leaving"],
      deletes: [],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const plan = planSweep({
        crs: c.crs,
        specOf,
        namespace,
        serviceAccounts: c.serviceAccounts,
        managedSecrets: c.secrets,
      });
      assert.deepEqual(
        plan.serviceAccountEdits.map(
          (e) => `${e.namespace}/${e.name} ${e.remove.map((r) => `-${r}`).join(" ")}`,
        ),
        c.edits,
      );
      assert.deepEqual(
        plan.secretDeletes.map((d) => `${d.namespace}/${d.name}`),
        c.deletes,
      );
    });
  }

  it("keeps what a CR with an unresolvable spec holds", () => {
    const broken = cr("broken", "u4", ["a"]);
    const plan = planSweep({
      crs: [broken],
      specOf: () => undefined,
      namespace,
      serviceAccounts: [sa("a", "default", ["broken"], ["broken"])],
      managedSecrets: [secret("a", "broken", "u4")],
    });
    assert.deepEqual(plan, { serviceAccountEdits: [], secretDeletes: [] });
  });
});
