// Bad input: malformed ECRPullSecrets (each rejected by the API server with a message naming the
// field, or accepted and reported in status with a specific reason), malformed credentials Secrets,
// and two CRs claiming one Secret name. Throughout, an operator process keeps a good CR synced and
// must neither crash nor log an error.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Secret } from "@kubernetes/client-node";
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from "../../src/api/types.ts";
import { OWNER_LABEL } from "../../src/controller/plan/labels.ts";
import {
  createPullSecretCr,
  deleteCr,
  operatorNamespace,
  readCr,
  startOperatorEnv,
  waitForPullSecret,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";
import {
  createNamespaces,
  errorLines,
  readyOf,
  startOperatorAs,
  waitForCr,
  type RunningOperator,
} from "./fixtures.ts";
import { SecretLedger } from "./ledger.ts";
import { assertNoLeaks, secretValues } from "./leaks.ts";
import { saveLogs, scenario, secondsBetween } from "./results.ts";
import { byScale } from "./scale.ts";

type Expectation =
  | { rejected: RegExp }
  | { reason: "InvalidSpec" | "CredentialsNotTrusted" | "CredentialsInvalid"; message: RegExp };

interface MalformedCase {
  name: string;
  /** The whole object to create; `spec` alone is wrapped into an ECRPullSecret named after the case. */
  object?: object;
  spec?: unknown;
  /** Ask the API server to reject unknown fields, as kubectl apply does (--validate=strict). */
  strict?: boolean;
  expect: Expectation;
}

const many = (count: number, make: (i: number) => string): string[] =>
  Array.from({ length: count }, (_, i) => make(i));
const cr = (name: string, spec: unknown, extra: object = {}): object => ({
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name },
  spec,
  ...extra,
});
const rejected = (field: RegExp): Expectation => ({ rejected: field });
const target = { namespaces: ["bad-0000"] };

const malformed: MalformedCase[] = [
  // metadata
  { name: "name-too-long", object: cr("a".repeat(64), target), expect: rejected(/metadata\.name/) },
  { name: "name-uppercase", object: cr("Bad-Name", target), expect: rejected(/metadata\.name/) },
  { name: "name-unicode", object: cr("ünïcode", target), expect: rejected(/metadata\.name/) },
  { name: "name-underscore", object: cr("bad_name", target), expect: rejected(/metadata\.name/) },
  {
    name: "name-missing",
    object: { apiVersion: API_VERSION, kind: KIND, metadata: {}, spec: target },
    expect: rejected(/metadata\.name|name or generateName/),
  },
  // the object as a whole
  {
    name: "spec-missing",
    object: { apiVersion: API_VERSION, kind: KIND, metadata: { name: "spec-missing" } },
    expect: rejected(/spec/),
  },
  { name: "spec-null", spec: null, expect: rejected(/spec/) },
  { name: "spec-string", spec: "everything", expect: rejected(/spec/) },
  {
    name: "unknown-top-level-field",
    object: cr("unknown-top-level-field", target, { extra: 1 }),
    strict: true,
    expect: rejected(/extra/),
  },
  {
    name: "unknown-spec-field",
    spec: { ...target, bogus: true },
    strict: true,
    expect: rejected(/spec\.bogus/),
  },
  {
    name: "unknown-nested-field",
    spec: { ...target, aws: { region: "eu-west-1" } },
    strict: true,
    expect: rejected(/spec\.aws\.region/),
  },
  // secretName
  {
    name: "secretname-uppercase",
    spec: { ...target, secretName: "ECR-Pull" },
    expect: rejected(/spec\.secretName/),
  },
  {
    name: "secretname-unicode",
    spec: { ...target, secretName: "ecr-püll" },
    expect: rejected(/spec\.secretName/),
  },
  {
    name: "secretname-too-long",
    spec: { ...target, secretName: "a".repeat(254) },
    expect: rejected(/spec\.secretName/),
  },
  {
    name: "secretname-huge",
    spec: { ...target, secretName: "a".repeat(100_000) },
    expect: rejected(/spec\.secretName/),
  },
  { name: "secretname-empty", spec: { ...target, secretName: "" }, expect: rejected(/spec\.secretName/) },
  { name: "secretname-slash", spec: { ...target, secretName: "a/b" }, expect: rejected(/spec\.secretName/) },
  // namespaces and excludeNamespaces
  { name: "namespaces-string", spec: { namespaces: "bad-0000" }, expect: rejected(/spec\.namespaces/) },
  { name: "namespaces-number", spec: { namespaces: [5] }, expect: rejected(/spec\.namespaces\[0\]/) },
  { name: "namespaces-empty-item", spec: { namespaces: [""] }, expect: rejected(/spec\.namespaces\[0\]/) },
  {
    name: "namespaces-uppercase",
    spec: { namespaces: ["Team-*"] },
    expect: rejected(/spec\.namespaces\[0\]/),
  },
  { name: "namespaces-unicode", spec: { namespaces: ["tëam-*"] }, expect: rejected(/spec\.namespaces\[0\]/) },
  {
    name: "namespaces-zero-width",
    spec: { namespaces: ["team\u200b-a"] },
    expect: rejected(/spec\.namespaces\[0\]/),
  },
  {
    name: "namespaces-control-char",
    spec: { namespaces: ["team\u0000a"] },
    expect: rejected(/spec\.namespaces\[0\]/),
  },
  {
    name: "namespaces-path",
    spec: { namespaces: ["../kube-system"] },
    expect: rejected(/spec\.namespaces\[0\]/),
  },
  {
    name: "namespaces-too-long",
    spec: { namespaces: ["a".repeat(64)] },
    expect: rejected(/spec\.namespaces\[0\]/),
  },
  {
    name: "namespaces-open-bracket",
    spec: { namespaces: ["team-["] },
    expect: rejected(/spec\.namespaces\[0\]/),
  },
  {
    name: "namespaces-duplicate",
    spec: { namespaces: ["bad-0000", "bad-0000"] },
    expect: rejected(/spec\.namespaces\[1\]/),
  },
  {
    name: "namespaces-huge-list",
    spec: { namespaces: many(257, (i) => `ns-${i}`) },
    expect: rejected(/spec\.namespaces/),
  },
  {
    name: "namespaces-reversed-range",
    spec: { namespaces: ["bad-[z-a]"] },
    expect: { reason: "InvalidSpec", message: /namespaces\[0\]/ },
  },
  {
    name: "exclude-uppercase",
    spec: { ...target, excludeNamespaces: ["Kube-*"] },
    expect: rejected(/spec\.excludeNamespaces\[0\]/),
  },
  {
    name: "exclude-empty-negation",
    spec: { ...target, excludeNamespaces: ["[!]"] },
    expect: rejected(/spec\.excludeNamespaces\[0\]/),
  },
  {
    name: "exclude-reversed-range",
    spec: { ...target, excludeNamespaces: ["[9-0]*"] },
    expect: { reason: "InvalidSpec", message: /excludeNamespaces\[0\]/ },
  },
  // namespaceSelector
  {
    name: "selector-bad-value",
    spec: { namespaceSelector: { matchLabels: { team: "bad value!" } } },
    expect: rejected(/spec\.namespaceSelector\.matchLabels/),
  },
  {
    name: "selector-bad-key",
    spec: { namespaceSelector: { matchLabels: { "bad key!": "x" } } },
    expect: { reason: "InvalidSpec", message: /namespaceSelector.*matchLabels/ },
  },
  {
    name: "selector-too-many-labels",
    spec: {
      namespaceSelector: { matchLabels: Object.fromEntries(many(65, (i) => `k${i}`).map((k) => [k, "v"])) },
    },
    expect: rejected(/spec\.namespaceSelector\.matchLabels/),
  },
  {
    name: "selector-bad-operator",
    spec: { namespaceSelector: { matchExpressions: [{ key: "team", operator: "Like", values: ["a"] }] } },
    expect: rejected(/spec\.namespaceSelector\.matchExpressions\[0\]\.operator/),
  },
  {
    name: "selector-in-without-values",
    spec: { namespaceSelector: { matchExpressions: [{ key: "team", operator: "In" }] } },
    expect: rejected(/spec\.namespaceSelector\.matchExpressions\[0\]/),
  },
  {
    name: "selector-exists-with-values",
    spec: { namespaceSelector: { matchExpressions: [{ key: "team", operator: "Exists", values: ["a"] }] } },
    expect: rejected(/spec\.namespaceSelector\.matchExpressions\[0\]/),
  },
  {
    name: "selector-bad-key-expression",
    spec: { namespaceSelector: { matchExpressions: [{ key: "-bad", operator: "Exists" }] } },
    expect: rejected(/spec\.namespaceSelector\.matchExpressions\[0\]\.key/),
  },
  {
    name: "selector-too-many-values",
    spec: {
      namespaceSelector: {
        matchExpressions: [{ key: "team", operator: "In", values: many(129, (i) => `v${i}`) }],
      },
    },
    expect: rejected(/spec\.namespaceSelector\.matchExpressions\[0\]\.values/),
  },
  // serviceAccounts
  {
    name: "serviceaccounts-star-and-more",
    spec: { ...target, serviceAccounts: ["*", "default"] },
    expect: rejected(/spec\.serviceAccounts/),
  },
  {
    name: "serviceaccounts-uppercase",
    spec: { ...target, serviceAccounts: ["Default"] },
    expect: rejected(/spec\.serviceAccounts\[0\]/),
  },
  {
    name: "serviceaccounts-empty-name",
    spec: { ...target, serviceAccounts: [""] },
    expect: rejected(/spec\.serviceAccounts\[0\]/),
  },
  // registries
  {
    name: "registry-foreign-host",
    spec: { ...target, registries: ["evil.example.com"] },
    expect: rejected(/spec\.registries\[0\]/),
  },
  {
    name: "registry-short-account",
    spec: { ...target, registries: ["123.dkr.ecr.eu-west-1.amazonaws.com"] },
    expect: rejected(/spec\.registries\[0\]/),
  },
  {
    name: "registry-suffix-attack",
    spec: { ...target, registries: ["123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.com"] },
    expect: rejected(/spec\.registries\[0\]/),
  },
  {
    name: "registry-with-scheme",
    spec: { ...target, registries: ["https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"] },
    expect: rejected(/spec\.registries\[0\]/),
  },
  {
    name: "registry-with-path",
    spec: { ...target, registries: ["public.ecr.aws/library"] },
    expect: rejected(/spec\.registries\[0\]/),
  },
  {
    name: "registry-china-region-on-com",
    spec: { ...target, registries: ["123456789012.dkr.ecr.cn-north-1.amazonaws.com"] },
    expect: rejected(/spec\.registries\[0\]/),
  },
  {
    name: "registries-huge-list",
    spec: {
      ...target,
      registries: many(33, (i) => `1234567890${String(i).padStart(2, "0")}.dkr.ecr.eu-west-1.amazonaws.com`),
    },
    expect: rejected(/spec\.registries/),
  },
  // region
  { name: "region-uppercase", spec: { ...target, region: "EU-WEST-1" }, expect: rejected(/spec\.region/) },
  {
    name: "region-injection",
    spec: { ...target, region: "eu-west-1; rm -rf /" },
    expect: rejected(/spec\.region/),
  },
  { name: "region-empty", spec: { ...target, region: "" }, expect: rejected(/spec\.region/) },
  // aws
  {
    name: "credentials-missing-name",
    spec: { ...target, aws: { credentialsSecretRef: { namespace: operatorNamespace } } },
    expect: rejected(/spec\.aws\.credentialsSecretRef\.name/),
  },
  {
    name: "credentials-bad-namespace",
    spec: { ...target, aws: { credentialsSecretRef: { namespace: "Kube-System", name: "x" } } },
    expect: rejected(/spec\.aws\.credentialsSecretRef\.namespace/),
  },
  {
    name: "credentials-untrusted-namespace",
    spec: { ...target, aws: { credentialsSecretRef: { namespace: "kube-system", name: "aws" } } },
    expect: { reason: "CredentialsNotTrusted", message: /spec\.aws\.credentialsSecretRef/ },
  },
  {
    name: "role-not-an-arn",
    spec: { ...target, aws: { assumeRole: { roleArn: "not-an-arn" } } },
    expect: rejected(/spec\.aws\.assumeRole\.roleArn/),
  },
  {
    name: "role-short-account",
    spec: { ...target, aws: { assumeRole: { roleArn: "arn:aws:iam::123:role/x" } } },
    expect: rejected(/spec\.aws\.assumeRole\.roleArn/),
  },
  {
    name: "role-missing-arn",
    spec: { ...target, aws: { assumeRole: {} } },
    expect: rejected(/spec\.aws\.assumeRole\.roleArn/),
  },
  {
    name: "role-short-external-id",
    spec: {
      ...target,
      aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/x", externalId: "x" } },
    },
    expect: rejected(/spec\.aws\.assumeRole\.externalId/),
  },
  {
    name: "role-session-name-space",
    spec: {
      ...target,
      aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/x", sessionName: "has space" } },
    },
    expect: rejected(/spec\.aws\.assumeRole\.sessionName/),
  },
  {
    name: "role-duration-too-short",
    spec: {
      ...target,
      aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/x", durationSeconds: 100 } },
    },
    expect: rejected(/spec\.aws\.assumeRole\.durationSeconds/),
  },
  {
    name: "role-duration-string",
    spec: {
      ...target,
      aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/x", durationSeconds: "3600" } },
    },
    expect: rejected(/spec\.aws\.assumeRole\.durationSeconds/),
  },
  // refreshInterval and suspend
  {
    name: "refresh-too-short",
    spec: { ...target, refreshInterval: "5s" },
    expect: rejected(/spec\.refreshInterval/),
  },
  {
    name: "refresh-too-long",
    spec: { ...target, refreshInterval: "13h" },
    expect: rejected(/spec\.refreshInterval/),
  },
  {
    name: "refresh-days",
    spec: { ...target, refreshInterval: "1d" },
    expect: rejected(/spec\.refreshInterval/),
  },
  {
    name: "refresh-words",
    spec: { ...target, refreshInterval: "forever" },
    expect: rejected(/spec\.refreshInterval/),
  },
  {
    name: "refresh-negative",
    spec: { ...target, refreshInterval: "-1h" },
    expect: rejected(/spec\.refreshInterval/),
  },
  { name: "suspend-string", spec: { ...target, suspend: "yes" }, expect: rejected(/spec\.suspend/) },
];

/** Distinctive values in the malformed credentials Secrets: none may appear anywhere the operator writes. */
const planted = {
  secretKey: "BadInputSecretAccessKey/Planted+0123456789",
  sessionToken: "BadInputSessionTokenPlanted0123456789abcdefABCDEF",
};

interface CredentialsCase {
  name: string;
  type?: string;
  data?: Record<string, string | Buffer>;
  /** The credentials Secret does not exist at all. */
  absent?: boolean;
  message: RegExp;
}

const keyId = "AKIABADINPUT00000001";
const credentialsCases: CredentialsCase[] = [
  { name: "missing-secret-key", data: { AWS_ACCESS_KEY_ID: keyId }, message: /AWS_SECRET_ACCESS_KEY/ },
  { name: "unrelated-keys", data: { password: planted.secretKey }, message: /AWS_ACCESS_KEY_ID/ },
  { name: "no-data", data: {}, message: /no data/ },
  {
    name: "empty-values",
    data: { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" },
    message: /AWS_ACCESS_KEY_ID.*empty/,
  },
  {
    name: "whitespace-values",
    data: { AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: "  \n\t " },
    message: /AWS_SECRET_ACCESS_KEY.*whitespace/,
  },
  {
    name: "inner-whitespace",
    data: { AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: `${planted.secretKey} x` },
    message: /AWS_SECRET_ACCESS_KEY.*whitespace/,
  },
  {
    name: "binary-value",
    data: { AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: Buffer.from([0xff, 0xfe, 0x00, 0x80]) },
    message: /AWS_SECRET_ACCESS_KEY.*binary/,
  },
  {
    // AWS key ids are word characters (any case, 16 to 128); punctuation is a mangled paste.
    name: "key-id-punctuation",
    data: { AWS_ACCESS_KEY_ID: "AKIA.BADINPUT.00001", AWS_SECRET_ACCESS_KEY: planted.secretKey },
    message: /AWS_ACCESS_KEY_ID.*not an AWS access key id/,
  },
  {
    name: "temporary-without-token",
    data: { AWS_ACCESS_KEY_ID: "ASIABADINPUT00000001", AWS_SECRET_ACCESS_KEY: planted.secretKey },
    message: /AWS_SESSION_TOKEN/,
  },
  {
    name: "empty-session-token",
    data: {
      AWS_ACCESS_KEY_ID: "ASIABADINPUT00000001",
      AWS_SECRET_ACCESS_KEY: planted.secretKey,
      AWS_SESSION_TOKEN: "",
    },
    message: /AWS_SESSION_TOKEN.*empty/,
  },
  {
    name: "type-basic-auth",
    type: "kubernetes.io/basic-auth",
    data: { username: "AWS", password: planted.sessionToken },
    message: /AWS_ACCESS_KEY_ID/,
  },
  {
    name: "type-dockerconfigjson",
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": '{"auths":{}}' },
    message: /AWS_ACCESS_KEY_ID/,
  },
  { name: "absent", absent: true, message: /does not exist/ },
];

describe("bad input", () => {
  let env: OperatorEnv;
  let operator: RunningOperator;
  let goodSecrets: V1Secret[] = [];

  before(async () => {
    env = await startOperatorEnv({ startOperator: false });
    await createNamespaces(env, "bad", 3);
    await createPullSecretCr(env, "good", { secretName: "good-pull", namespaces: ["bad-*"] });
    operator = await startOperatorAs(env, "reliability-bad-input", ["--leader-elect=false"]);
    await waitForCr(env, "good", { synced: 3 });
    goodSecrets = (await env.core.listSecretForAllNamespaces({ fieldSelector: "metadata.name=good-pull" }))
      .items;
  });

  after(async () => {
    await operator.proc.stop();
    await env.stop();
  });

  async function createCase(c: MalformedCase): Promise<{ status: number; message: string }> {
    const body = c.object ?? cr(c.name, c.spec);
    const fieldValidation = c.strict === true ? "Strict" : undefined;
    try {
      await env.objects.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        body,
        fieldValidation,
      });
      return { status: 201, message: "" };
    } catch (err) {
      const { code, body: text } = err as { code?: number; body?: unknown };
      const parsed = typeof text === "string" ? (JSON.parse(text) as { message?: string }) : {};
      return { status: code ?? 0, message: parsed.message ?? String(err) };
    }
  }

  /** The good CR still syncs: a namespace created now gets its Secret, and its Secrets were not rewritten. */
  async function goodStillSyncs(namespace: string): Promise<void> {
    await env.core.createNamespace({ body: { metadata: { name: namespace } } });
    await waitForPullSecret(env, namespace, "good-pull", "default", { timeoutMs: 60_000 });
    for (const before of goodSecrets) {
      const now = await env.core.readNamespacedSecret({
        namespace: before.metadata?.namespace ?? "",
        name: "good-pull",
      });
      assert.equal(now.metadata?.resourceVersion, before.metadata?.resourceVersion);
    }
  }

  it(`rejects or reports each of ${malformed.length} malformed ECRPullSecrets, naming the field, and keeps the good CR syncing`, async () => {
    await scenario("B1", `${malformed.length} malformed ECRPullSecrets`, async (figures) => {
      figures.cases = malformed.length;
      const problems: string[] = [];
      const accepted: { c: MalformedCase; expect: Extract<Expectation, { reason: string }> }[] = [];
      let rejectedCount = 0;
      for (const c of malformed) {
        const result = await createCase(c);
        if ("rejected" in c.expect) {
          if (result.status !== 422 && result.status !== 400) {
            problems.push(`${c.name}: expected a rejection, got HTTP ${result.status}`);
          } else if (!c.expect.rejected.test(result.message)) {
            problems.push(`${c.name}: the message does not name the field: ${result.message.slice(0, 200)}`);
          } else {
            rejectedCount += 1;
          }
        } else if (result.status !== 201) {
          problems.push(
            `${c.name}: expected to be accepted, got HTTP ${result.status}: ${result.message.slice(0, 200)}`,
          );
        } else {
          accepted.push({ c, expect: c.expect });
        }
      }
      figures.rejectedNamingField = rejectedCount;
      const started = Date.now();
      for (const { c, expect } of accepted) {
        try {
          await eventually(
            async () => {
              const ready = readyOf(await readCr(env, c.name));
              assert.equal(ready.status, "False");
              assert.equal(ready.reason, expect.reason);
              assert.match(ready.message, expect.message);
            },
            { timeoutMs: 30_000, message: `${c.name} reported` },
          );
        } catch (err) {
          problems.push(`${c.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      figures.acceptedAndReported = accepted.length;
      figures.reportSeconds = secondsBetween(started, Date.now());
      await goodStillSyncs("bad-late");
      // Invalid CRs can still be deleted: the operator removes its finalizer.
      for (const { c } of accepted) await deleteCr(env, c.name);
      await eventually(
        async () => {
          const list = (await env.objects.listClusterCustomObject({
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
          })) as {
            items: unknown[];
          };
          assert.equal(list.items.length, 1, "only the good CR is left");
        },
        { timeoutMs: 30_000, message: "invalid CRs deleted" },
      );
      figures.operatorExited = operator.proc.process.child.exitCode !== null;
      figures.errorLogLines = errorLines(operator.proc.logs()).length;
      assert.deepEqual(problems, []);
      assert.equal(figures.operatorExited, false);
      assert.deepEqual(errorLines(operator.proc.logs()), []);
    });
  });

  it("reports each malformed credentials Secret by the key at fault, never its value, and recovers once fixed", async () => {
    await scenario("B2", `${credentialsCases.length} malformed credentials Secrets`, async (figures) => {
      figures.cases = credentialsCases.length;
      const problems: string[] = [];
      for (const c of credentialsCases) {
        if (c.absent !== true) {
          const data = Object.fromEntries(
            Object.entries(c.data ?? {}).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
          );
          await env.core.createNamespacedSecret({
            namespace: operatorNamespace,
            body: { metadata: { name: `creds-${c.name}` }, type: c.type, data },
          });
        }
        await createPullSecretCr(env, `creds-${c.name}`, {
          secretName: `creds-${c.name}`,
          namespaces: ["bad-0000"],
          aws: { credentialsSecretRef: { namespace: operatorNamespace, name: `creds-${c.name}` } },
        });
      }
      for (const c of credentialsCases) {
        try {
          await eventually(
            async () => {
              const ready = readyOf(await readCr(env, `creds-${c.name}`));
              assert.equal(ready.reason, "CredentialsInvalid");
              assert.match(ready.message, c.message);
            },
            { timeoutMs: 30_000, message: `creds-${c.name} reported` },
          );
        } catch (err) {
          problems.push(`${c.name}: ${err instanceof Error ? err.message : String(err)}`);
        }
        await assert.rejects(
          env.core.readNamespacedSecret({ namespace: "bad-0000", name: `creds-${c.name}` }),
        );
      }
      figures.reportedNamingKey = credentialsCases.length - problems.length;
      // Fixing a Secret in place takes effect without a restart.
      const fixedAt = Date.now();
      await env.core.replaceNamespacedSecret({
        namespace: operatorNamespace,
        name: "creds-missing-secret-key",
        body: {
          metadata: { name: "creds-missing-secret-key" },
          stringData: { AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: planted.secretKey },
        },
      });
      await waitForCr(env, "creds-missing-secret-key", { synced: 1 });
      figures.recoverySecondsAfterFix = secondsBetween(fixedAt, Date.now());
      // Well-formed temporary credentials (with a session token) work, and the token then travels
      // through the SDK: this file's leak scan looks for it everywhere.
      await env.core.createNamespacedSecret({
        namespace: operatorNamespace,
        body: {
          metadata: { name: "creds-session" },
          stringData: {
            AWS_ACCESS_KEY_ID: "ASIABADINPUT00000002",
            AWS_SECRET_ACCESS_KEY: planted.secretKey,
            AWS_SESSION_TOKEN: planted.sessionToken,
          },
        },
      });
      await createPullSecretCr(env, "creds-session", {
        secretName: "creds-session",
        namespaces: ["bad-0000"],
        aws: { credentialsSecretRef: { namespace: operatorNamespace, name: "creds-session" } },
      });
      await waitForCr(env, "creds-session", { synced: 1 });
      await deleteCr(env, "creds-session");
      for (const c of credentialsCases) await deleteCr(env, `creds-${c.name}`);
      await goodStillSyncs("bad-late-2");
      figures.errorLogLines = errorLines(operator.proc.logs()).length;
      assert.deepEqual(problems, []);
      assert.equal(operator.proc.process.child.exitCode, null);
      assert.deepEqual(errorLines(operator.proc.logs()), []);
    });
  });

  it("gives a contested Secret name one owner, reports the conflict on the other CR, and never flaps", async () => {
    await scenario("B3", "conflicting CRs claim one Secret name", async (figures) => {
      const windowMs = byScale(10_000, 120_000);
      await createNamespaces(env, "clash", 3);
      const ledger = new SecretLedger({ kubeConfig: env.plane.kubeConfig, secretName: "clash-pull" });
      await ledger.start();
      try {
        await createPullSecretCr(env, "clash-a", { secretName: "clash-pull", namespaces: ["clash-*"] });
        await waitForCr(env, "clash-a", { synced: 3 });
        await createPullSecretCr(env, "clash-b", { secretName: "clash-pull", namespaces: ["clash-*"] });
        // Two more, created at the same moment, on fresh namespaces: a race for the same names.
        await createNamespaces(env, "race", 3);
        await Promise.all([
          createPullSecretCr(env, "race-a", { secretName: "clash-pull", namespaces: ["race-*"] }),
          createPullSecretCr(env, "race-b", { secretName: "clash-pull", namespaces: ["race-*"] }),
        ]);
        const b = await waitForCr(env, "clash-b", { reason: "SecretConflict" });
        assert.equal(b.status?.failures?.length, 3);
        assert.match(b.status.failures[0]?.message ?? "", /belongs to ECRPullSecret clash-a/);
        figures.conflictsReported = b.status.failures.length;
        await eventually(
          async () => {
            const [ra, rb] = [readyOf(await readCr(env, "race-a")), readyOf(await readCr(env, "race-b"))];
            const reasons = [ra.reason, rb.reason].sort();
            assert.deepEqual(reasons, ["SecretConflict", "Synced"]);
          },
          { timeoutMs: 30_000, message: "one race winner" },
        );
        // The window: churn that re-enqueues every CR (namespace labels, a new namespace).
        const windowStart = Date.now();
        const changesBefore = ledger.ownerChanges.length;
        const modifiedBefore = [...ledger.modifications.values()].reduce((x, y) => x + y, 0);
        let churn = 0;
        await eventually(
          async () => {
            churn += 1;
            await env.core.patchNamespace({
              name: `clash-000${churn % 3}`,
              body: [{ op: "add", path: "/metadata/labels/churn", value: String(churn) }],
            });
            if (churn === 3) await env.core.createNamespace({ body: { metadata: { name: "clash-late" } } });
            assert.ok(Date.now() - windowStart >= windowMs);
          },
          { timeoutMs: windowMs + 10_000, intervalMs: 1000, message: "conflict window" },
        );
        await waitForPullSecret(env, "clash-late", "clash-pull", "default", { timeoutMs: 30_000 });
        figures.windowSeconds = windowMs / 1000;
        figures.churnEvents = churn;
        figures.ownerChangesInWindow = ledger.ownerChanges.length - changesBefore;
        const modified = [...ledger.modifications.values()].reduce((x, y) => x + y, 0) - modifiedBefore;
        figures.secretWritesInWindow = modified;
        const owners = (
          await env.core.listSecretForAllNamespaces({ fieldSelector: "metadata.name=clash-pull" })
        ).items;
        const clashOwners = new Set(
          owners
            .filter((s) => s.metadata?.namespace?.startsWith("clash-"))
            .map((s) => s.metadata?.labels?.[OWNER_LABEL]),
        );
        const raceOwners = new Set(
          owners
            .filter((s) => s.metadata?.namespace?.startsWith("race-"))
            .map((s) => s.metadata?.labels?.[OWNER_LABEL]),
        );
        figures.clashOwners = [...clashOwners].join(",");
        figures.raceOwners = [...raceOwners].join(",");
        assert.deepEqual([...clashOwners], ["clash-a"]);
        assert.equal(raceOwners.size, 1);
        assert.equal(figures.ownerChangesInWindow, 0);
        assert.equal(modified, 0, "a contested Secret was rewritten during the window");
        // Deleting the owner hands the name over to the other CR once.
        const handoverStart = Date.now();
        await deleteCr(env, "clash-a");
        await waitForCr(env, "clash-b", { synced: 4, timeoutMs: 60_000 });
        figures.handoverSeconds = secondsBetween(handoverStart, Date.now());
        assert.equal(readyOf(await readCr(env, "clash-b")).reason, "Synced");
      } finally {
        await ledger.stop();
      }
      assert.equal(operator.proc.process.child.exitCode, null);
    });
  });

  it("never puts a secret in a log line, Event or status over bad input", async () => {
    await scenario("L3", "no secret leaked: bad input", async (figures) => {
      const logs = operator.proc.logs();
      saveLogs("bad-input", logs);
      await assertNoLeaks(figures, {
        core: env.core,
        objects: env.objects,
        logs,
        secrets: secretValues([planted.secretKey, planted.sessionToken]),
      });
    });
  });
});
