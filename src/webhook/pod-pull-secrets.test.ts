import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { API_VERSION, KIND, type ECRPullSecret, type ECRPullSecretSpec } from "../api/types.ts";
import type { NamespaceView } from "../controller/plan/desired.ts";
import { isSpecProblem, resolveSpec } from "../controller/plan/spec.ts";
import {
  decidePodPullSecrets,
  imagePullSecretsPatch,
  WEBHOOK_OPT_OUT_LABEL,
  type PodAdmissionInput,
  type PodDecision,
  type PodView,
  type PullSecretClaim,
} from "./pod-pull-secrets.ts";

function cr(name: string, spec: ECRPullSecretSpec, extra: Partial<ECRPullSecret> = {}): ECRPullSecret {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, uid: `uid-${name}` }, spec, ...extra };
}

function claim(resource: ECRPullSecret): PullSecretClaim {
  const spec = resolveSpec(resource, {
    defaultRegion: "eu-west-1",
    trustedNamespaces: new Set(["ecr-system"]),
  });
  return { cr: resource, spec: isSpecProblem(spec) ? undefined : spec };
}

function ns(name: string, labels?: Record<string, string>): NamespaceView {
  return { name, labels, terminating: false };
}

function pod(overrides: Partial<PodView> = {}): PodView {
  return {
    namespace: "team-a",
    serviceAccountName: "default",
    labels: undefined,
    annotations: undefined,
    imagePullSecrets: undefined,
    ...overrides,
  };
}

const teams = cr("teams", { secretName: "ecr-pull", namespaces: ["team-*"] });

interface Case {
  name: string;
  input: Partial<PodAdmissionInput> & { claims: PullSecretClaim[] };
  expected: PodDecision;
}

const cases: Case[] = [
  {
    name: "adds the Secret to a Pod of the default ServiceAccount in a targeted namespace",
    input: { claims: [claim(teams)] },
    expected: { result: "mutated", add: ["ecr-pull"], ecrPullSecrets: ["teams"] },
  },
  {
    name: "treats a Pod without serviceAccountName as the default ServiceAccount's",
    input: { pod: pod({ serviceAccountName: "" }), claims: [claim(teams)] },
    expected: { result: "mutated", add: ["ecr-pull"], ecrPullSecrets: ["teams"] },
  },
  {
    name: "leaves a Pod in a namespace no CR targets alone",
    input: { pod: pod({ namespace: "other" }), namespace: ns("other"), claims: [claim(teams)] },
    expected: { result: "unchanged", reason: "not-targeted" },
  },
  {
    name: "leaves a Pod of a ServiceAccount the CR does not select alone",
    input: { pod: pod({ serviceAccountName: "builder" }), claims: [claim(teams)] },
    expected: { result: "unchanged", reason: "not-targeted" },
  },
  {
    name: "adds to a Pod of a named ServiceAccount the CR selects",
    input: {
      pod: pod({ serviceAccountName: "builder" }),
      claims: [
        claim(cr("b", { secretName: "b-pull", namespaces: ["team-a"], serviceAccounts: ["builder"] })),
      ],
    },
    expected: { result: "mutated", add: ["b-pull"], ecrPullSecrets: ["b"] },
  },
  {
    name: 'adds for any ServiceAccount with serviceAccounts ["*"]',
    input: {
      pod: pod({ serviceAccountName: "anything" }),
      claims: [claim(cr("all", { secretName: "all-pull", namespaces: ["team-a"], serviceAccounts: ["*"] }))],
    },
    expected: { result: "mutated", add: ["all-pull"], ecrPullSecrets: ["all"] },
  },
  {
    name: "adds nothing with serviceAccounts []",
    input: {
      claims: [claim(cr("none", { secretName: "none-pull", namespaces: ["team-a"], serviceAccounts: [] }))],
    },
    expected: { result: "unchanged", reason: "not-targeted" },
  },
  {
    name: "matches namespaces by label selector with the cached labels",
    input: {
      pod: pod({ namespace: "labelled" }),
      namespace: ns("labelled", { "ecr-pull": "true" }),
      claims: [
        claim(
          cr("sel", { secretName: "sel-pull", namespaceSelector: { matchLabels: { "ecr-pull": "true" } } }),
        ),
      ],
    },
    expected: { result: "mutated", add: ["sel-pull"], ecrPullSecrets: ["sel"] },
  },
  {
    name: "matches by name alone while the namespace is not cached",
    input: { pod: pod({ namespace: "team-new" }), namespace: undefined, claims: [claim(teams)] },
    expected: { result: "mutated", add: ["ecr-pull"], ecrPullSecrets: ["teams"] },
  },
  {
    name: "respects excludeNamespaces",
    input: {
      claims: [
        claim(cr("ex", { secretName: "ex-pull", namespaces: ["team-*"], excludeNamespaces: ["team-a"] })),
      ],
    },
    expected: { result: "unchanged", reason: "not-targeted" },
  },
  {
    name: "adds one entry per Secret name for several CRs, de-duplicated, in CR name order",
    input: {
      claims: [
        claim(cr("zeta", { secretName: "z-pull", namespaces: ["team-a"] })),
        claim(cr("alpha", { secretName: "a-pull", namespaces: ["team-*"] })),
        claim(cr("same-name", { secretName: "z-pull", namespaces: ["team-*"] })),
      ],
    },
    expected: {
      result: "mutated",
      add: ["a-pull", "z-pull"],
      ecrPullSecrets: ["alpha", "same-name", "zeta"],
    },
  },
  {
    name: "appends to entries the Pod got from its ServiceAccount",
    input: {
      pod: pod({ imagePullSecrets: ["theirs"] }),
      serviceAccountPullSecrets: ["theirs"],
      claims: [claim(teams)],
    },
    expected: { result: "mutated", add: ["ecr-pull"], ecrPullSecrets: ["teams"] },
  },
  {
    name: "leaves a Pod that lists its own pull secrets alone, as the ServiceAccount plugin does",
    input: {
      pod: pod({ imagePullSecrets: ["mine"] }),
      serviceAccountPullSecrets: [],
      claims: [claim(teams)],
    },
    expected: { result: "unchanged", reason: "own-pull-secrets" },
  },
  {
    name: "treats entries as the Pod's own when the ServiceAccount is not cached",
    input: {
      pod: pod({ imagePullSecrets: ["theirs"] }),
      serviceAccountPullSecrets: undefined,
      claims: [claim(teams)],
    },
    expected: { result: "unchanged", reason: "own-pull-secrets" },
  },
  {
    name: "changes nothing when the Pod already lists the Secret",
    input: { pod: pod({ imagePullSecrets: ["ecr-pull"] }), claims: [claim(teams)] },
    expected: { result: "unchanged", reason: "already-listed" },
  },
  {
    name: "adds only the missing one of two wanted names",
    input: {
      pod: pod({ imagePullSecrets: ["ecr-pull"] }),
      claims: [claim(teams), claim(cr("more", { secretName: "more-pull", namespaces: ["team-a"] }))],
    },
    expected: { result: "mutated", add: ["more-pull"], ecrPullSecrets: ["more"] },
  },
  {
    name: "honours the opt-out label on the Pod",
    input: { pod: pod({ labels: { [WEBHOOK_OPT_OUT_LABEL]: "disabled" } }), claims: [claim(teams)] },
    expected: { result: "unchanged", reason: "opted-out" },
  },
  {
    name: "honours the opt-out label on the namespace",
    input: { namespace: ns("team-a", { [WEBHOOK_OPT_OUT_LABEL]: "disabled" }), claims: [claim(teams)] },
    expected: { result: "unchanged", reason: "opted-out" },
  },
  {
    name: "ignores another value of the opt-out label",
    input: { pod: pod({ labels: { [WEBHOOK_OPT_OUT_LABEL]: "enabled" } }), claims: [claim(teams)] },
    expected: { result: "mutated", add: ["ecr-pull"], ecrPullSecrets: ["teams"] },
  },
  {
    name: "never touches a mirror Pod, which may not reference Secrets",
    input: { pod: pod({ annotations: { "kubernetes.io/config.mirror": "abc" } }), claims: [claim(teams)] },
    expected: { result: "unchanged", reason: "mirror-pod" },
  },
  {
    name: "skips a suspended CR",
    input: { claims: [claim(cr("s", { secretName: "s-pull", namespaces: ["team-a"], suspend: true }))] },
    expected: { result: "unchanged", reason: "not-targeted" },
  },
  {
    name: "skips a CR being deleted",
    input: {
      claims: [
        claim({
          ...cr("gone", { secretName: "gone-pull", namespaces: ["team-a"] }),
          metadata: { name: "gone", uid: "u", deletionTimestamp: new Date(0) },
        }),
      ],
    },
    expected: { result: "unchanged", reason: "not-targeted" },
  },
  {
    name: "skips a CR whose spec does not resolve",
    input: {
      claims: [{ cr: cr("bad", { secretName: "bad-pull", namespaces: ["team-a"] }), spec: undefined }],
    },
    expected: { result: "unchanged", reason: "not-targeted" },
  },
  {
    name: "skips a namespace where the CR reports a Secret conflict",
    input: {
      claims: [
        claim(
          cr(
            "c",
            { secretName: "c-pull", namespaces: ["team-*"] },
            {
              status: { failures: [{ namespace: "team-a", reason: "SecretConflict", message: "not ours" }] },
            },
          ),
        ),
      ],
    },
    expected: { result: "unchanged", reason: "not-targeted" },
  },
];

describe("decidePodPullSecrets", () => {
  for (const c of cases) {
    it(c.name, () => {
      const input: PodAdmissionInput = {
        pod: pod(),
        namespace: ns("team-a"),
        serviceAccountPullSecrets: [],
        ...c.input,
      };
      assert.deepEqual(decidePodPullSecrets(input), c.expected);
    });
  }
});

describe("imagePullSecretsPatch", () => {
  it("adds the whole list when the Pod has none", () => {
    assert.deepEqual(imagePullSecretsPatch(undefined, ["a", "b"]), [
      { op: "add", path: "/spec/imagePullSecrets", value: [{ name: "a" }, { name: "b" }] },
    ]);
  });

  it("appends after existing entries without touching them", () => {
    assert.deepEqual(imagePullSecretsPatch(["theirs"], ["a", "b"]), [
      { op: "add", path: "/spec/imagePullSecrets/-", value: { name: "a" } },
      { op: "add", path: "/spec/imagePullSecrets/-", value: { name: "b" } },
    ]);
  });

  it("appends to an empty list rather than replacing it", () => {
    assert.deepEqual(imagePullSecretsPatch([], ["a"]), [
      { op: "add", path: "/spec/imagePullSecrets/-", value: { name: "a" } },
    ]);
  });

  it("is empty when there is nothing to add", () => {
    assert.deepEqual(imagePullSecretsPatch(["theirs"], []), []);
  });
});
