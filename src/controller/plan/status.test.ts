import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Condition, ECRPullSecret, ECRPullSecretStatus, NamespaceFailure } from "../../api/types.ts";
import type { CredentialSource } from "../../aws/credentials.ts";
import { TokenCache } from "../../aws/token-cache.ts";
import type { EcrToken } from "../../aws/token.ts";
import { ManualClock } from "../../clock.ts";
import { unobserved } from "../../observability/observer.ts";
import { createTokenContentSource } from "../content.ts";
import { isSpecProblem, resolveSpec } from "./spec.ts";
import {
  buildStatus,
  sameStatus,
  statusPatch,
  type Outcome,
  type RegistryState,
  type TokenProblem,
} from "./status.ts";

const now = "2026-01-01T07:00:00Z";
const hosts = {
  euWest: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  usEast: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
  public: "public.ecr.aws",
};

function reconciled(registries: RegistryState[], tokenProblem?: TokenProblem): Outcome {
  return {
    kind: "reconciled",
    desired: 2,
    synced: 2,
    failures: [],
    token: {
      expiresAt: "2026-01-01T12:00:00Z",
      refreshedAt: "2026-01-01T07:00:00Z",
      nextRefreshAt: undefined,
    },
    tokenProblem,
    registries,
  };
}

const fresh: RegistryState = {
  host: hosts.euWest,
  state: "Fresh",
  expiresAt: Date.parse("2026-01-01T19:00:00Z"),
  mintedAt: Date.parse("2026-01-01T07:00:00Z"),
  problem: undefined,
};

describe("status.registries", () => {
  it("lists each host with its own token times, and the error only where refreshing fails", () => {
    const failing: RegistryState = {
      host: hosts.public,
      state: "Kept",
      expiresAt: Date.parse("2026-01-01T12:00:00Z"),
      mintedAt: Date.parse("2026-01-01T00:00:00Z"),
      problem: {
        reason: "TokenRefreshFailed",
        message: "ECR Public GetAuthorizationToken: ServerException: x",
      },
    };
    const missing: RegistryState = {
      host: hosts.usEast,
      state: "Missing",
      expiresAt: undefined,
      mintedAt: undefined,
      problem: { reason: "AwsAuthFailed", message: "AccessDeniedException: no" },
    };
    const problem = {
      reason: "PartiallyRefreshed" as const,
      message: "1 of 3 registries refreshed; failing: ...",
    };
    const status = buildStatus(undefined, 4, reconciled([fresh, failing, missing], problem), now);
    assert.deepEqual(status.registries, [
      { host: hosts.euWest, tokenExpiresAt: "2026-01-01T19:00:00Z", lastRefreshTime: "2026-01-01T07:00:00Z" },
      {
        host: hosts.public,
        tokenExpiresAt: "2026-01-01T12:00:00Z",
        lastRefreshTime: "2026-01-01T00:00:00Z",
        lastError: failing.problem,
      },
      { host: hosts.usEast, lastError: missing.problem },
    ]);
    const ready = status.conditions?.find((c) => c.type === "Ready");
    assert.deepEqual(
      [ready?.status, ready?.reason, ready?.message],
      ["False", problem.reason, problem.message],
    );
    assert.equal(status.tokenExpiresAt, "2026-01-01T12:00:00Z");
    assert.equal(status.nextRefreshTime, undefined, "a failing refresh is retried on the backoff");
  });

  it("cuts an error message to the status bound", () => {
    const long: RegistryState = {
      ...fresh,
      state: "Kept",
      problem: { reason: "TokenRefreshFailed", message: "x".repeat(5000) },
    };
    const status = buildStatus(undefined, 1, reconciled([long]), now);
    assert.equal(status.registries?.[0]?.lastError?.message.length, 1024);
  });

  it("drops the list when the CR is suspended", () => {
    const previous = buildStatus(undefined, 1, reconciled([fresh]), now);
    assert.equal(buildStatus(previous, 2, { kind: "suspended" }, now).registries, undefined);
  });

  it("never carries a secret from what AWS answered into a registry's error", async () => {
    const secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const sessionToken = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdGhpcyBpcyBub3QgYSByZWFsIHRva2Vu";
    const accessKeyId = "AKIAIOSFODNN7EXAMPLE";
    const source: CredentialSource = {
      key: "static:AKIA****MPLE:0123",
      description: "static credentials AKIA****MPLE",
      provider: () => Promise.resolve({ accessKeyId, secretAccessKey, sessionToken }),
    };
    const clock = new ManualClock(Date.parse(now));
    const tokens = new TokenCache({
      clock,
      mint: (_source, target): Promise<EcrToken> => {
        if (target.kind === "public") {
          const quoted = `key ${accessKeyId} secret ${secretAccessKey} token ${sessionToken} rejected`;
          return Promise.reject(
            Object.assign(new Error(quoted), {
              name: "AccessDeniedException",
              $metadata: { httpStatusCode: 403 },
            }),
          );
        }
        return Promise.resolve({
          kind: "private",
          region: target.region,
          username: "AWS",
          password: "ecr-password-never-in-status",
          mintedAt: clock.now(),
          expiresAt: clock.now() + 12 * 3_600_000,
        });
      },
    });
    const content = createTokenContentSource({
      credentials: { resolve: () => source },
      tokens,
      clock,
      observer: unobserved,
    });
    const cr: ECRPullSecret = {
      apiVersion: "ecr-creds-refresher.io/v1alpha1",
      kind: "ECRPullSecret",
      metadata: { name: "cr", uid: "u" },
      spec: { registries: [hosts.euWest, hosts.public] },
    };
    const spec = resolveSpec(cr, { defaultRegion: undefined, trustedNamespaces: new Set() });
    assert.ok(!isSpecProblem(spec));
    const result = await content.contentFor(spec, undefined);
    const status = buildStatus(undefined, 1, reconciled(result.registries, result.problem), now);
    const shown = JSON.stringify(status);
    assert.match(shown, /AccessDeniedException/);
    assert.match(shown, /AKIA\*\*\*\*MPLE/, "the key id is named masked");
    for (const secret of [secretAccessKey, sessionToken, accessKeyId, "ecr-password-never-in-status"]) {
      assert.ok(!shown.includes(secret), `status reveals a secret: ${shown}`);
    }
  });
});

describe("buildStatus", () => {
  const earlier = "2026-01-01T06:00:00Z";
  const token = {
    expiresAt: "2026-01-01T19:00:00Z",
    refreshedAt: now,
    nextRefreshAt: "2026-01-01T13:00:00Z",
  };
  const synced = (fields: Partial<Extract<Outcome, { kind: "reconciled" }>> = {}): Outcome => ({
    kind: "reconciled",
    desired: 2,
    synced: 2,
    failures: [],
    token,
    tokenProblem: undefined,
    registries: [],
    ...fields,
  });
  const conflict = (namespace: string): NamespaceFailure => ({
    namespace,
    reason: "SecretConflict",
    message: `Secret ${namespace}/team-pull belongs to ECRPullSecret older`,
  });
  const forbidden: NamespaceFailure = { namespace: "locked", reason: "Forbidden", message: "forbidden" };
  const valid: [Condition["status"], string, string] = [
    "True",
    "TokenValid",
    "token valid until 2026-01-01T19:00:00Z",
  ];

  const cases: {
    name: string;
    outcome: Outcome;
    ready: [Condition["status"], string, string];
    tokenValid: [Condition["status"], string, string];
  }[] = [
    {
      name: "is Ready when every target namespace is synced",
      outcome: synced(),
      ready: ["True", "Synced", "2/2 namespaces synced"],
      tokenValid: valid,
    },
    {
      name: "is Ready with no target namespace at all",
      outcome: synced({ desired: 0, synced: 0 }),
      ready: ["True", "Synced", "0/0 namespaces synced"],
      tokenValid: valid,
    },
    {
      name: "says SecretConflict when conflicts are the only failures",
      outcome: synced({ synced: 1, failures: [conflict("team-b")] }),
      ready: ["False", "SecretConflict", "1/2 namespaces synced; failing: team-b"],
      tokenValid: valid,
    },
    {
      name: "says PartiallySynced when other failures are among them",
      outcome: synced({ synced: 0, failures: [conflict("team-b"), forbidden] }),
      ready: ["False", "PartiallySynced", "0/2 namespaces synced; failing: team-b, locked"],
      tokenValid: valid,
    },
    {
      name: "names five failing namespaces and counts the rest",
      outcome: synced({
        desired: 7,
        synced: 0,
        failures: ["a", "b", "c", "d", "e", "f", "g"].map(conflict),
      }),
      ready: ["False", "SecretConflict", "0/7 namespaces synced; failing: a, b, c, d, e and 2 more"],
      tokenValid: valid,
    },
    {
      name: "says PartiallySynced when a namespace is not synced without a failure",
      outcome: synced({ synced: 1 }),
      ready: ["False", "PartiallySynced", "1/2 namespaces synced"],
      tokenValid: valid,
    },
    {
      name: "puts a token problem ahead of the namespaces, in both conditions",
      outcome: synced({ tokenProblem: { reason: "AwsAuthFailed", message: "AccessDenied" } }),
      ready: ["False", "AwsAuthFailed", "AccessDenied"],
      tokenValid: ["False", "AwsAuthFailed", "AccessDenied"],
    },
    {
      name: "says the token is unknown before one was minted",
      outcome: synced({ token: undefined }),
      ready: ["True", "Synced", "2/2 namespaces synced"],
      tokenValid: ["Unknown", "NoToken", "no token minted yet"],
    },
    {
      name: "reports an invalid spec with its reason and message",
      outcome: { kind: "invalid", reason: "InvalidSpec", message: "spec.refreshInterval: too short" },
      ready: ["False", "InvalidSpec", "spec.refreshInterval: too short"],
      tokenValid: ["Unknown", "InvalidSpec", ""],
    },
    {
      name: "reports untrusted credentials",
      outcome: { kind: "invalid", reason: "CredentialsNotTrusted", message: 'namespace "kube-system"' },
      ready: ["False", "CredentialsNotTrusted", 'namespace "kube-system"'],
      tokenValid: ["Unknown", "CredentialsNotTrusted", ""],
    },
    {
      name: "reports a suspended CR",
      outcome: { kind: "suspended" },
      ready: ["False", "Suspended", "spec.suspend is true: nothing is refreshed or written"],
      tokenValid: ["Unknown", "Suspended", ""],
    },
  ];
  for (const { name, outcome, ready, tokenValid } of cases) {
    it(name, () => {
      const status = buildStatus(undefined, 3, outcome, now);
      assert.equal(status.observedGeneration, 3);
      const summary = status.conditions?.map((c) => [c.type, c.status, c.reason, c.message]);
      assert.deepEqual(summary, [
        ["Ready", ...ready],
        ["TokenValid", ...tokenValid],
      ]);
      for (const condition of status.conditions ?? []) {
        assert.equal(condition.observedGeneration, 3);
        assert.equal(condition.lastTransitionTime, now);
      }
    });
  }

  it("counts namespaces and token times of a reconciled CR", () => {
    const status = buildStatus(undefined, 1, synced({ synced: 1, failures: [forbidden] }), now);
    assert.deepEqual(
      [
        status.namespaces,
        status.synced,
        status.tokenExpiresAt,
        status.lastRefreshTime,
        status.nextRefreshTime,
      ],
      [{ desired: 2, synced: 1 }, "1/2", token.expiresAt, token.refreshedAt, token.nextRefreshAt],
    );
    assert.deepEqual(status.failures, [forbidden]);
  });

  it("keeps a condition's transition time while its status stays, and moves it when the status changes", () => {
    const before = buildStatus(undefined, 1, synced(), earlier);
    const same = buildStatus(before, 2, synced({ token: undefined }), now);
    assert.deepEqual(
      same.conditions?.map((c) => [c.type, c.lastTransitionTime]),
      [
        ["Ready", earlier],
        ["TokenValid", now],
      ],
    );
  });

  it("keeps reporting the last token's times while refreshing fails", () => {
    const before = buildStatus(undefined, 1, synced(), earlier);
    const failing = synced({
      token: undefined,
      tokenProblem: { reason: "TokenRefreshFailed", message: "ServiceException" },
    });
    const status = buildStatus(before, 1, failing, now);
    assert.equal(status.tokenExpiresAt, token.expiresAt);
    assert.equal(status.lastRefreshTime, token.refreshedAt);
    assert.equal(status.nextRefreshTime, undefined);
  });

  it("bounds the failures it lists and the length of their messages", () => {
    const failures = Array.from({ length: 60 }, (_, i) => ({
      ...forbidden,
      namespace: `ns-${i}`,
      message: "x".repeat(2000),
    }));
    const status = buildStatus(undefined, 1, synced({ desired: 60, synced: 0, failures }), now);
    assert.equal(status.failures?.length, 50);
    assert.ok(status.failures.every((f) => f.message.length === 1024));
  });

  it("leaves out the namespace counts and token times unless the CR was reconciled", () => {
    const before = buildStatus(undefined, 1, synced(), earlier);
    const status = buildStatus(before, 2, { kind: "suspended" }, now);
    assert.deepEqual(Object.keys(status).sort(), ["conditions", "observedGeneration"]);
  });
});

describe("sameStatus", () => {
  const status = buildStatus(undefined, 1, reconciled([fresh]), now);
  const cases: { name: string; previous: ECRPullSecretStatus | undefined; expected: boolean }[] = [
    { name: "is the same status as an equal one", previous: structuredClone(status), expected: true },
    {
      name: "ignores the order of fields",
      previous: Object.fromEntries(Object.entries(status).reverse()),
      expected: true,
    },
    {
      name: "ignores fields set to undefined",
      previous: { ...status, nextRefreshTime: undefined },
      expected: true,
    },
    { name: "differs from no status at all", previous: undefined, expected: false },
    { name: "differs in a value", previous: { ...status, synced: "1/2" }, expected: false },
    {
      name: "differs in a condition",
      previous: buildStatus(undefined, 1, reconciled([fresh]), "2026-01-01T06:00:00Z"),
      expected: false,
    },
    {
      name: "differs by a field the new one lacks",
      previous: { ...status, nextRefreshTime: "2026-01-01T13:00:00Z" },
      expected: false,
    },
  ];
  for (const { name, previous, expected } of cases) {
    it(name, () => {
      assert.equal(sameStatus(previous, status), expected);
    });
  }
});

describe("statusPatch", () => {
  const next: ECRPullSecretStatus = { observedGeneration: 2, synced: "1/1" };
  const cases: { name: string; previous: ECRPullSecretStatus | undefined; expected: object }[] = [
    { name: "sets every field of a first status", previous: undefined, expected: next },
    {
      name: "names with null each field the new status drops",
      previous: { observedGeneration: 1, synced: "2/2", nextRefreshTime: "2026-01-01T13:00:00Z" },
      expected: { observedGeneration: 2, synced: "1/1", nextRefreshTime: null },
    },
    {
      name: "overwrites the fields both have",
      previous: { observedGeneration: 1, synced: "0/1" },
      expected: next,
    },
  ];
  for (const { name, previous, expected } of cases) {
    it(name, () => {
      assert.deepEqual(statusPatch(previous, next), expected);
    });
  }
});
