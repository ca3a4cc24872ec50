import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { API_VERSION, KIND } from "../../api/types.ts";
import type { ECRPullSecretSpec } from "../../api/types.ts";
import { contentDigest, desiredSecretBody, planCleanup, planPullSecrets } from "./desired.ts";
import type {
  ClusterView,
  ManagedSecretView,
  NamespaceView,
  Owner,
  Plan,
  SecretBody,
  SecretContent,
  ServiceAccountView,
} from "./desired.ts";
import { buildDockerConfigJson } from "./dockerconfig.ts";
import {
  CONTENT_DIGEST_ANNOTATION,
  EXPIRES_AT_ANNOTATION,
  IDENTITY_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OWNER_LABEL,
  REFRESHED_AT_ANNOTATION,
} from "./labels.ts";
import { isSpecProblem, resolveSpec } from "./spec.ts";
import type { ResolvedSpec } from "./spec.ts";

const owner: Owner = { name: "prod-ecr", uid: "uid-1" };
const secretName = "ecr-pull";
const registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

const content: SecretContent = {
  dockerConfigJson: buildDockerConfigJson([{ host: registry, username: "AWS", password: "token-1" }]),
  expiresAt: "2030-01-01T12:00:00.000Z",
  refreshedAt: "2030-01-01T00:00:00.000Z",
  identity: "0123456789abcdef",
};

function resolved(spec: ECRPullSecretSpec): ResolvedSpec {
  const result = resolveSpec(
    { apiVersion: API_VERSION, kind: KIND, metadata: { name: owner.name, uid: owner.uid }, spec },
    { defaultRegion: "eu-west-1", trustedNamespaces: new Set(["ecr-system"]) },
  );
  if (isSpecProblem(result)) {
    assert.fail(`${result.reason}: ${result.message}`);
  }
  return result;
}

/** The original Python operator's CR: a secret name and a list of namespaces. */
const original: ECRPullSecretSpec = { secretName, namespaces: ["default", "team-a"] };

// An in-memory ClusterView: namespaces, ServiceAccounts and managed Secrets as the caches would hold them.
interface Cluster {
  namespaces?: NamespaceView[];
  serviceAccounts?: ServiceAccountView[];
  secrets?: ManagedSecretView[];
  /** "namespace/secretName" -> the ECRPullSecret that holds it ahead of ours. */
  claims?: Record<string, string>;
}

function clusterView(cluster: Cluster): ClusterView {
  const secrets = cluster.secrets ?? [];
  return {
    namespaces: cluster.namespaces ?? [],
    serviceAccounts: (namespace) =>
      (cluster.serviceAccounts ?? []).filter((sa) => sa.namespace === namespace),
    managedSecret: (namespace, name) => secrets.find((s) => s.namespace === namespace && s.name === name),
    ownedSecrets: (ownerName) => secrets.filter((s) => s.labels[OWNER_LABEL] === ownerName),
    claimedByOther: (namespace, name) => cluster.claims?.[`${namespace}/${name}`],
  };
}

function ns(name: string, labels?: Record<string, string>): NamespaceView {
  return { name, labels, terminating: false };
}

function terminating(name: string): NamespaceView {
  return { name, labels: undefined, terminating: true };
}

function sa(
  namespace: string,
  name: string,
  imagePullSecrets: string[] = [],
  added: string[] = [],
): ServiceAccountView {
  return { namespace, name, imagePullSecrets, added };
}

/** A managed Secret exactly as planPullSecrets would write it for `content`. */
function current(namespace: string, changes: Partial<ManagedSecretView> = {}): ManagedSecretView {
  return {
    namespace,
    name: secretName,
    type: "kubernetes.io/dockerconfigjson",
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: owner.name },
    annotations: {
      [EXPIRES_AT_ANNOTATION]: content.expiresAt,
      [REFRESHED_AT_ANNOTATION]: content.refreshedAt,
      [IDENTITY_ANNOTATION]: content.identity,
    },
    ownerUids: [owner.uid],
    dockerConfigJson: content.dockerConfigJson,
    ...changes,
  };
}

/** Our Secret in default; in team-a one that a deleted CR of the same name left, with its entries. */
const previousCrOfSameName: Cluster = {
  namespaces: [ns("default"), ns("team-a")],
  serviceAccounts: [
    sa("default", "default", [secretName], [secretName]),
    sa("team-a", "default", [secretName], [secretName]),
  ],
  secrets: [current("default"), current("team-a", { ownerUids: ["uid-old"] })],
};

interface Summary {
  desired: string[];
  inSync: string[];
  /** "create ns/name" or "update ns/name" */
  writes: string[];
  /** "ns/name" */
  deletes: string[];
  /** "ns/serviceaccount +added -removed" */
  edits: string[];
  /** namespaces */
  conflicts: string[];
}

function summarise(plan: Plan): Summary {
  return {
    desired: plan.desired,
    inSync: plan.inSync,
    writes: plan.secretWrites.map((w) => `${w.action} ${w.namespace}/${w.body.metadata.name}`).sort(),
    deletes: plan.secretDeletes.map((d) => `${d.namespace}/${d.name}`).sort(),
    edits: plan.serviceAccountEdits
      .map((e) =>
        [`${e.namespace}/${e.name}`, ...e.add.map((a) => `+${a}`), ...e.remove.map((r) => `-${r}`)].join(" "),
      )
      .sort(),
    conflicts: plan.conflicts.map((c) => c.namespace),
  };
}

const nothing: Summary = { desired: [], inSync: [], writes: [], deletes: [], edits: [], conflicts: [] };

describe("planPullSecrets", () => {
  const cases: {
    name: string;
    spec: ECRPullSecretSpec;
    cluster: Cluster;
    content?: SecretContent | undefined;
    expected: Partial<Summary>;
  }[] = [
    // Namespace targeting
    {
      name: "creates the original operator's secret in each listed namespace and adds it to default",
      spec: original,
      cluster: {
        namespaces: [ns("default"), ns("team-a"), ns("team-b")],
        serviceAccounts: [
          sa("default", "default"),
          sa("default", "builder"),
          sa("team-a", "default"),
          sa("team-b", "default"),
        ],
      },
      expected: {
        desired: ["default", "team-a"],
        writes: ["create default/ecr-pull", "create team-a/ecr-pull"],
        edits: ["default/default +ecr-pull", "team-a/default +ecr-pull"],
      },
    },
    {
      name: "unions globs with the namespaceSelector and applies excludeNamespaces last",
      spec: {
        secretName,
        namespaces: ["team-*"],
        namespaceSelector: { matchLabels: { "ecr-pull": "true" } },
        excludeNamespaces: ["team-x", "kube-*"],
        serviceAccounts: [],
      },
      cluster: {
        namespaces: [
          ns("team-a"),
          ns("team-x"),
          ns("apps", { "ecr-pull": "true" }),
          ns("kube-system", { "ecr-pull": "true" }),
          ns("other", { "ecr-pull": "false" }),
          ns("teams"),
        ],
      },
      expected: {
        desired: ["team-a", "apps"],
        writes: ["create apps/ecr-pull", "create team-a/ecr-pull"],
      },
    },
    {
      name: "skips a terminating namespace: not desired and nothing written there",
      spec: original,
      cluster: {
        namespaces: [terminating("default"), ns("team-a")],
        serviceAccounts: [sa("default", "default"), sa("team-a", "default")],
      },
      expected: {
        desired: ["team-a"],
        writes: ["create team-a/ecr-pull"],
        edits: ["team-a/default +ecr-pull"],
      },
    },
    {
      name: "leaves the secret and entries in a terminating namespace alone",
      spec: original,
      cluster: {
        namespaces: [terminating("default")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
        secrets: [current("default", { dockerConfigJson: "stale" })],
      },
      expected: {},
    },
    {
      name: "creates the secret in a namespace that appears and adds it to its ServiceAccount",
      spec: { secretName, namespaces: ["team-*"] },
      cluster: {
        namespaces: [ns("team-a"), ns("team-new")],
        serviceAccounts: [sa("team-a", "default", [secretName], [secretName]), sa("team-new", "default")],
        secrets: [current("team-a")],
      },
      expected: {
        desired: ["team-a", "team-new"],
        inSync: ["team-a"],
        writes: ["create team-new/ecr-pull"],
        edits: ["team-new/default +ecr-pull"],
      },
    },
    {
      name: "creates the secret in a namespace without ServiceAccounts yet",
      spec: original,
      cluster: { namespaces: [ns("default")] },
      expected: { desired: ["default"], writes: ["create default/ecr-pull"] },
    },
    {
      name: "targets nothing when no namespace matches",
      spec: original,
      cluster: { namespaces: [ns("team-b")], serviceAccounts: [sa("team-b", "default")] },
      expected: {},
    },

    // Secret content
    {
      name: "writes nothing when the secret and ServiceAccounts are up to date",
      spec: original,
      cluster: {
        namespaces: [ns("default"), ns("team-a")],
        serviceAccounts: [
          sa("default", "default", [secretName], [secretName]),
          sa("team-a", "default", [secretName]),
        ],
        secrets: [current("default"), current("team-a")],
      },
      expected: { desired: ["default", "team-a"], inSync: ["default", "team-a"] },
    },
    ...(
      [
        ["its .dockerconfigjson changed", { dockerConfigJson: "{}" }],
        ["its .dockerconfigjson is missing", { dockerConfigJson: undefined }],
        ["its type is not dockerconfigjson", { type: "Opaque" }],
        [
          "its expiry annotation is old",
          {
            annotations: { ...current("x").annotations, [EXPIRES_AT_ANNOTATION]: "2029-01-01T00:00:00.000Z" },
          },
        ],
        [
          "its refresh annotation is old",
          {
            annotations: {
              ...current("x").annotations,
              [REFRESHED_AT_ANNOTATION]: "2029-01-01T00:00:00.000Z",
            },
          },
        ],
        ["its annotations are gone", { annotations: {} }],
        ["its owner label is missing", { labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } }],
        [
          "its managed-by label has another value",
          { labels: { [MANAGED_BY_LABEL]: "someone-else", [OWNER_LABEL]: owner.name } },
        ],
        ["its ownerReference lacks the CR's uid", { ownerUids: [] }],
        ["its ownerReference names a previous CR of the same name", { ownerUids: ["uid-old"] }],
      ] satisfies [string, Partial<ManagedSecretView>][]
    ).map(([why, changes]) => ({
      name: `updates the secret in place when ${why}`,
      spec: original,
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
        secrets: [current("default", changes)],
      },
      expected: { desired: ["default"], writes: ["update default/ecr-pull"] },
    })),
    {
      name: "writes nothing and deletes nothing while no token is available",
      spec: original,
      cluster: {
        namespaces: [ns("default"), ns("team-a")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName]), sa("team-a", "default")],
        secrets: [current("default", { dockerConfigJson: "stale" })],
      },
      content: undefined,
      expected: { desired: ["default", "team-a"] },
    },
    {
      name: "counts an up-to-date secret as present but not in sync while no token is available",
      spec: original,
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
        secrets: [current("default")],
      },
      content: undefined,
      expected: { desired: ["default"] },
    },
    {
      name: "adds the entry for an existing secret while no token is available",
      spec: original,
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default")],
        secrets: [current("default", { dockerConfigJson: "stale" })],
      },
      content: undefined,
      expected: { desired: ["default"], edits: ["default/default +ecr-pull"] },
    },
    {
      name: "still cleans up a namespace that stopped matching while no token is available",
      spec: original,
      cluster: {
        namespaces: [ns("default"), ns("team-b")],
        serviceAccounts: [sa("team-b", "default", [secretName], [secretName])],
        secrets: [current("default"), current("team-b")],
      },
      content: undefined,
      expected: { desired: ["default"], deletes: ["team-b/ecr-pull"], edits: ["team-b/default -ecr-pull"] },
    },

    // ServiceAccounts
    {
      name: "keeps other imagePullSecrets when adding ours",
      spec: original,
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", ["dockerhub", "quay"], ["dockerhub"])],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], edits: ["default/default +ecr-pull"] },
    },
    {
      name: "leaves a ServiceAccount alone that a user already pointed at our secret",
      spec: original,
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", ["dockerhub", secretName])],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], inSync: ["default"] },
    },
    {
      name: "does not remove a user's entry for our secret from a deselected ServiceAccount",
      spec: { ...original, serviceAccounts: [] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", [secretName], ["other-secret"])],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], inSync: ["default"] },
    },
    {
      name: "edits every ServiceAccount for [*], skipping those that have the entry",
      spec: { ...original, namespaces: ["default"], serviceAccounts: ["*"] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [
          sa("default", "default"),
          sa("default", "builder", ["dockerhub"]),
          sa("default", "deployer", [secretName], [secretName]),
        ],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], edits: ["default/builder +ecr-pull", "default/default +ecr-pull"] },
    },
    {
      name: "edits no ServiceAccount for []",
      spec: { ...original, namespaces: ["default"], serviceAccounts: [] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default"), sa("default", "builder")],
      },
      expected: { desired: ["default"], writes: ["create default/ecr-pull"] },
    },
    {
      name: "is in sync for [] once the secret is current",
      spec: { ...original, namespaces: ["default"], serviceAccounts: [] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default"), sa("default", "builder")],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], inSync: ["default"] },
    },
    {
      name: "edits only default when serviceAccounts is left out",
      spec: { ...original, namespaces: ["default"] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "builder"), sa("default", "default"), sa("default", "deployer")],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], edits: ["default/default +ecr-pull"] },
    },
    {
      name: "edits only the listed ServiceAccounts",
      spec: { ...original, namespaces: ["default"], serviceAccounts: ["builder", "missing"] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "builder"), sa("default", "default")],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], edits: ["default/builder +ecr-pull"] },
    },
    {
      name: "removes our entry from a deselected ServiceAccount that we added it to",
      spec: { ...original, namespaces: ["default"], serviceAccounts: ["builder"] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [
          sa("default", "default", ["dockerhub", secretName], [secretName]),
          sa("default", "builder", [secretName], [secretName]),
        ],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], edits: ["default/default -ecr-pull"] },
    },
    {
      name: "does not try to remove an entry that is already gone from a deselected ServiceAccount",
      spec: { ...original, namespaces: ["default"], serviceAccounts: [] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", ["dockerhub"], [secretName])],
        secrets: [current("default")],
      },
      expected: { desired: ["default"], inSync: ["default"] },
    },

    // Leaving namespaces, renames, ownership
    {
      name: "deletes the secret from a namespace that stops matching and removes only entries we added",
      spec: { ...original, namespaces: ["default"] },
      cluster: {
        namespaces: [ns("default"), ns("team-a")],
        serviceAccounts: [
          sa("default", "default", [secretName], [secretName]),
          sa("team-a", "default", ["dockerhub", secretName], [secretName]),
          sa("team-a", "builder", [secretName]),
          sa("team-a", "deployer", ["dockerhub"], [secretName]),
        ],
        secrets: [current("default"), current("team-a")],
      },
      expected: {
        desired: ["default"],
        inSync: ["default"],
        deletes: ["team-a/ecr-pull"],
        edits: ["team-a/default -ecr-pull"],
      },
    },
    {
      name: "deletes a secret in a namespace that no longer exists",
      spec: original,
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
        secrets: [current("default"), current("gone")],
      },
      expected: { desired: ["default"], inSync: ["default"], deletes: ["gone/ecr-pull"] },
    },
    {
      name: "replaces the old-name secret and its entries when secretName changes",
      spec: { ...original, secretName: "ecr-pull-v2", namespaces: ["default"] },
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [
          sa("default", "default", ["dockerhub", secretName], [secretName]),
          sa("default", "builder", [secretName]),
        ],
        secrets: [current("default")],
      },
      expected: {
        desired: ["default"],
        writes: ["create default/ecr-pull-v2"],
        deletes: ["default/ecr-pull"],
        edits: ["default/default +ecr-pull-v2 -ecr-pull"],
      },
    },
    {
      name: "does not delete a secret owned by a previous CR of the same name",
      spec: { ...original, namespaces: ["default"] },
      cluster: previousCrOfSameName,
      expected: { desired: ["default"], inSync: ["default"] },
    },
    {
      name: "ignores secrets labelled for another CR",
      spec: { ...original, namespaces: ["default"] },
      cluster: {
        namespaces: [ns("default"), ns("team-a")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
        secrets: [
          current("default"),
          current("team-a", { labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: "other-ecr" } }),
        ],
      },
      expected: { desired: ["default"], inSync: ["default"] },
    },

    // Conflicts
    {
      name: "reports a conflict where another CR holds the secret and leaves that namespace alone",
      spec: original,
      cluster: {
        namespaces: [ns("default"), ns("team-a")],
        serviceAccounts: [sa("default", "default"), sa("team-a", "default")],
        claims: { "default/ecr-pull": "older-ecr" },
      },
      expected: {
        desired: ["default", "team-a"],
        writes: ["create team-a/ecr-pull"],
        edits: ["team-a/default +ecr-pull"],
        conflicts: ["default"],
      },
    },
    {
      name: "does not update or delete a conflicting secret it sees in the cache",
      spec: original,
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
        secrets: [current("default", { dockerConfigJson: "stale" })],
        claims: { "default/ecr-pull": "older-ecr" },
      },
      expected: { desired: ["default"], conflicts: ["default"] },
    },
  ];

  for (const { name, spec, cluster, expected, ...rest } of cases) {
    it(name, () => {
      const tokenContent = "content" in rest ? rest.content : content;
      const plan = planPullSecrets(owner, resolved(spec), clusterView(cluster), tokenContent);
      assert.deepEqual(summarise(plan), { ...nothing, ...expected });
    });
  }

  it("writes the full desired body for a created and an updated secret", () => {
    const plan = planPullSecrets(
      owner,
      resolved(original),
      clusterView({
        namespaces: [ns("default"), ns("team-a")],
        secrets: [current("team-a", { dockerConfigJson: "stale", ownerUids: ["uid-old"] })],
      }),
      content,
    );
    assert.deepEqual(plan.secretWrites, [
      {
        action: "create",
        namespace: "default",
        body: desiredSecretBody(owner, "default", secretName, content),
      },
      {
        action: "update",
        namespace: "team-a",
        body: desiredSecretBody(owner, "team-a", secretName, content),
      },
    ]);
  });

  it("shares one copy of the labels, annotations, owner and data between the bodies of a plan", () => {
    const plan = planPullSecrets(
      owner,
      resolved(original),
      clusterView({ namespaces: [ns("default"), ns("team-a")] }),
      content,
    );
    const [first, second] = plan.secretWrites.map((w) => w.body);
    assert.ok(first !== undefined && second !== undefined);
    assert.notEqual(first.metadata, second.metadata);
    assert.deepEqual([first.metadata.namespace, second.metadata.namespace], ["default", "team-a"]);
    assert.equal(first.data, second.data);
    assert.equal(first.metadata.labels, second.metadata.labels);
    assert.equal(first.metadata.annotations, second.metadata.annotations);
    assert.equal(first.metadata.ownerReferences, second.metadata.ownerReferences);
  });

  it("adds only our entry, with nothing to remove, to a ServiceAccount with other entries", () => {
    const plan = planPullSecrets(
      owner,
      resolved(original),
      clusterView({
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", ["dockerhub", "quay"], ["quay"])],
        secrets: [current("default")],
      }),
      content,
    );
    assert.deepEqual(plan.serviceAccountEdits, [
      { namespace: "default", name: "default", add: [secretName], remove: [] },
    ]);
  });

  it("names the namespace, the secret and the other CR in a conflict", () => {
    const plan = planPullSecrets(
      owner,
      resolved(original),
      clusterView({ namespaces: [ns("default")], claims: { "default/ecr-pull": "older-ecr" } }),
      content,
    );
    assert.deepEqual(plan.conflicts, [
      {
        namespace: "default",
        reason: "SecretConflict",
        message: "Secret default/ecr-pull belongs to ECRPullSecret older-ecr",
      },
    ]);
  });

  it("keeps the secret content out of conflict messages", () => {
    const plan = planPullSecrets(
      owner,
      resolved(original),
      clusterView({ namespaces: [ns("default")], claims: { "default/ecr-pull": "older-ecr" } }),
      content,
    );
    for (const conflict of plan.conflicts) {
      assert.doesNotMatch(conflict.message, /token-1/);
    }
  });
});

describe("planCleanup", () => {
  const cases: { name: string; cluster: Cluster; expected: Partial<Summary> }[] = [
    {
      name: "deletes every owned secret and removes only the entries we added",
      cluster: {
        namespaces: [ns("default"), ns("team-a")],
        serviceAccounts: [
          sa("default", "default", ["dockerhub", secretName], [secretName]),
          sa("default", "builder", [secretName]),
          sa("team-a", "default", [secretName], ["dockerhub"]),
          sa("team-a", "deployer", [secretName], [secretName]),
        ],
        secrets: [current("default"), current("team-a")],
      },
      expected: {
        deletes: ["default/ecr-pull", "team-a/ecr-pull"],
        edits: ["default/default -ecr-pull", "team-a/deployer -ecr-pull"],
      },
    },
    {
      name: "keeps secrets owned by a previous CR of the same name, and their entries",
      cluster: previousCrOfSameName,
      expected: { deletes: ["default/ecr-pull"], edits: ["default/default -ecr-pull"] },
    },
    {
      name: "keeps secrets labelled for another CR",
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
        secrets: [
          current("default", { labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: "other" } }),
        ],
      },
      expected: {},
    },
    {
      name: "removes each secret's own name, including one left from an earlier secretName",
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", ["old-pull", secretName], ["old-pull", secretName])],
        secrets: [current("default"), current("default", { name: "old-pull" })],
      },
      expected: {
        deletes: ["default/ecr-pull", "default/old-pull"],
        edits: ["default/default -ecr-pull", "default/default -old-pull"],
      },
    },
    {
      name: "does not touch a ServiceAccount whose added entry is already gone",
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", ["dockerhub"], [secretName])],
        secrets: [current("default")],
      },
      expected: { deletes: ["default/ecr-pull"] },
    },
    {
      name: "plans nothing when the CR owns nothing",
      cluster: {
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
      },
      expected: {},
    },
  ];

  for (const { name, cluster, expected } of cases) {
    it(name, () => {
      assert.deepEqual(summarise(planCleanup(owner, clusterView(cluster))), { ...nothing, ...expected });
    });
  }
});

describe("desiredSecretBody", () => {
  it("builds a dockerconfigjson Secret labelled, annotated and owned by the CR", () => {
    assert.deepEqual(desiredSecretBody(owner, "team-a", secretName, content), {
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/dockerconfigjson",
      metadata: {
        name: "ecr-pull",
        namespace: "team-a",
        labels: {
          "app.kubernetes.io/managed-by": "ecr-creds-refresher",
          "ecr-creds-refresher.io/owner": "prod-ecr",
        },
        annotations: {
          "ecr-creds-refresher.io/expires-at": "2030-01-01T12:00:00.000Z",
          "ecr-creds-refresher.io/refreshed-at": "2030-01-01T00:00:00.000Z",
          "ecr-creds-refresher.io/identity": "0123456789abcdef",
          "ecr-creds-refresher.io/content-digest": contentDigest(content),
        },
        ownerReferences: [
          {
            apiVersion: "ecr-creds-refresher.io/v1alpha1",
            kind: "ECRPullSecret",
            name: "prod-ecr",
            uid: "uid-1",
            controller: true,
            blockOwnerDeletion: false,
          },
        ],
      },
      data: { ".dockerconfigjson": Buffer.from(content.dockerConfigJson).toString("base64") },
    });
  });

  it("digests a content as every release did, since Secrets keep the digest across upgrades", () => {
    const digest = contentDigest({ ...content, dockerConfigJson: '{"auths":{}}' });
    assert.equal(digest, "6f548fdb0bce86690eb73637246c3bba");
    for (const changed of [
      { dockerConfigJson: '{"auths":{"x":{}}}' },
      { expiresAt: "2030-01-01T12:00:01.000Z" },
      { refreshedAt: "2030-01-01T00:00:01.000Z" },
      { identity: "fedcba9876543210" },
    ]) {
      assert.notEqual(contentDigest({ ...content, dockerConfigJson: '{"auths":{}}', ...changed }), digest);
    }
  });

  it("stores .dockerconfigjson base64-encoded so it decodes to the docker config", () => {
    const body = desiredSecretBody(owner, "team-a", secretName, content);
    const decoded = Buffer.from(body.data[".dockerconfigjson"], "base64").toString("utf8");
    assert.deepEqual(JSON.parse(decoded), {
      auths: {
        [registry]: {
          username: "AWS",
          password: "token-1",
          auth: Buffer.from("AWS:token-1").toString("base64"),
        },
      },
    });
  });

  /** The plan over the namespace `default` when its Secret is `body` with these annotations. */
  function planOver(body: SecretBody, annotations = body.metadata.annotations): Summary {
    const written: ManagedSecretView = {
      namespace: body.metadata.namespace,
      name: body.metadata.name,
      type: body.type,
      labels: body.metadata.labels,
      annotations,
      ownerUids: body.metadata.ownerReferences.map((ref) => ref.uid),
      dockerConfigJson: Buffer.from(body.data[".dockerconfigjson"], "base64").toString("utf8"),
    };
    const plan = planPullSecrets(
      owner,
      resolved(original),
      clusterView({
        namespaces: [ns("default")],
        serviceAccounts: [sa("default", "default", [secretName], [secretName])],
        secrets: [written],
      }),
      content,
    );
    return summarise(plan);
  }

  it("yields a body that planPullSecrets then sees as current", () => {
    const body = desiredSecretBody(owner, "default", secretName, content);
    assert.deepEqual(planOver(body), { ...nothing, desired: ["default"], inSync: ["default"] });
  });

  it("leaves a Secret without a digest as it is, and rewrites one whose digest is stale", () => {
    const body = desiredSecretBody(owner, "default", secretName, content);
    const { [CONTENT_DIGEST_ANNOTATION]: digest, ...older } = body.metadata.annotations;
    assert.equal(digest, contentDigest(content));
    assert.deepEqual(planOver(body, older), { ...nothing, desired: ["default"], inSync: ["default"] });
    const stale = { ...body.metadata.annotations, [CONTENT_DIGEST_ANNOTATION]: "0".repeat(32) };
    assert.deepEqual(planOver(body, stale).writes, ["update default/ecr-pull"]);
  });
});
