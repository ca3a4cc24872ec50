// Per-CR AWS credentials against the real API server and moto: static keys from a trusted Secret,
// refusal of an untrusted namespace (proved with the API server's audit log), unusable Secrets, an
// assumed role with an external ID, and moto with IAM authentication enforced.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";

import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  IAMClient,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";

import { motoDefaultCredentials } from "../harness/moto.ts";
import {
  createNamespace,
  createPullSecretCr,
  dockerConfigOf,
  operatorNamespace,
  readCr,
  readSecret,
  replaceCredentialsKey,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";

const motoAccount = "123456789012";
const operatorUser = "ecr-operator";

async function createKeysSecret(
  env: OperatorEnv,
  namespace: string,
  name: string,
  keys: Record<string, string>,
): Promise<void> {
  await env.core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: keys } });
}

function readyCondition(cr: Awaited<ReturnType<typeof readCr>>) {
  const ready = cr.status?.conditions?.find((c) => c.type === "Ready");
  assert.ok(ready !== undefined, "no Ready condition");
  return ready;
}

/** What a CR shows a user: every condition message and failure, plus the Events about it. */
async function everythingShownAbout(env: OperatorEnv, name: string): Promise<string> {
  const cr = await readCr(env, name);
  const events = await env.core.listNamespacedEvent({ namespace: "default" });
  const messages = events.items.filter((e) => e.involvedObject.name === name).map((e) => e.message ?? "");
  return JSON.stringify(cr.status) + messages.join("\n");
}

interface AuditEvent {
  user: { username: string };
  verb: string;
  requestURI: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
}

async function auditEvents(env: OperatorEnv): Promise<AuditEvent[]> {
  const text = await readFile(env.plane.auditLogPath, "utf8");
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as AuditEvent);
}

describe("credentials from Secrets and assumed roles, against a real API server and moto", () => {
  let env: OperatorEnv;

  before(async () => {
    env = await startOperatorEnv({ audit: true, operatorUser });
  });

  after(async () => {
    await env.stop();
  });

  it("mints with static keys from a Secret in a trusted namespace", async () => {
    const keyId = "AKIATEAMKEYS00000001";
    await createKeysSecret(env, operatorNamespace, "team-keys", {
      AWS_ACCESS_KEY_ID: keyId,
      AWS_SECRET_ACCESS_KEY: "team-secret-access-key",
    });
    await createNamespace(env, "cred-static");
    await createPullSecretCr(env, "cred-static", {
      namespaces: ["cred-static"],
      aws: { credentialsSecretRef: { namespace: operatorNamespace, name: "team-keys" } },
    });
    const secret = await waitForPullSecret(env, "cred-static", "cred-static");
    await waitForReady(env, "cred-static");
    const auth = dockerConfigOf(secret).auths[`${motoAccount}.dkr.ecr.eu-west-1.amazonaws.com`];
    assert.equal(auth?.password, `${motoAccount}-auth-token`);
    const signers = env.aws
      .calls()
      .filter((c) => c.operation === "ecr:GetAuthorizationToken")
      .map((c) => c.accessKeyId);
    assert.ok(signers.includes(keyId), `GetAuthorizationToken was signed by ${signers.join(", ")}`);
  });

  it("refuses a Secret in an untrusted namespace and never reads it", async () => {
    const stolenKeyId = "AKIASTOLENKEYS000001";
    const stolenSecret = "stolen-secret-access-key";
    await createNamespace(env, "untrusted");
    await createKeysSecret(env, "untrusted", "stolen-keys", {
      AWS_ACCESS_KEY_ID: stolenKeyId,
      AWS_SECRET_ACCESS_KEY: stolenSecret,
    });
    await createNamespace(env, "cred-untrusted");
    await createPullSecretCr(env, "cred-untrusted", {
      namespaces: ["cred-untrusted"],
      aws: { credentialsSecretRef: { namespace: "untrusted", name: "stolen-keys" } },
    });
    const cr = await waitForReady(env, "cred-untrusted", "CredentialsNotTrusted");
    const ready = readyCondition(cr);
    assert.equal(ready.status, "False");
    assert.match(ready.message, /namespace "untrusted" is not trusted/);
    const shown = await everythingShownAbout(env, "cred-untrusted");
    assert.ok(!shown.includes(stolenKeyId) && !shown.includes(stolenSecret));
    assert.ok(!env.aws.calls().some((c) => c.accessKeyId === stolenKeyId), "the stolen keys reached AWS");

    const byOperator = (await auditEvents(env)).filter(
      (e) => e.user.username === operatorUser && e.objectRef?.resource === "secrets",
    );
    // The audit log does show the operator's Secret requests: its watch on its own credentials Secret.
    assert.ok(
      byOperator.some((e) => e.objectRef?.namespace === operatorNamespace && e.verb === "watch"),
      "no audited Secret request by the operator: is the audit filter wrong?",
    );
    const touchingUntrusted = byOperator.filter(
      (e) => e.objectRef?.namespace === "untrusted" || e.requestURI.includes("stolen-keys"),
    );
    assert.deepEqual(touchingUntrusted, []);
    // Cluster-wide Secret requests are filtered to managed Secrets, which the stolen one is not.
    for (const event of byOperator.filter((e) => e.objectRef?.namespace === undefined)) {
      assert.match(decodeURIComponent(event.requestURI), /labelSelector=app\.kubernetes\.io\/managed-by=/);
    }
    const stolen = await readSecret(env, "untrusted", "stolen-keys");
    assert.equal(stolen.metadata?.labels, undefined);
  });

  it("names the missing key of an unusable credentials Secret, never a value", async () => {
    const keyId = "AKIAHALFKEYS00000001";
    await createKeysSecret(env, operatorNamespace, "half-keys", { AWS_ACCESS_KEY_ID: keyId });
    await createNamespace(env, "cred-half");
    await createPullSecretCr(env, "cred-half", {
      namespaces: ["cred-half"],
      aws: { credentialsSecretRef: { namespace: operatorNamespace, name: "half-keys" } },
    });
    const cr = await waitForReady(env, "cred-half", "CredentialsInvalid");
    const ready = readyCondition(cr);
    assert.equal(ready.status, "False");
    assert.match(ready.message, /has no AWS_SECRET_ACCESS_KEY/);
    assert.ok(!(await everythingShownAbout(env, "cred-half")).includes(keyId));
  });

  it("assumes a role with an external ID through STS and mints for the role's account", async () => {
    const roleAccount = "210987654321";
    const roleArn = `arn:aws:iam::${roleAccount}:role/ecr-pull`;
    env.aws.reset();
    await createNamespace(env, "cred-role");
    await createPullSecretCr(env, "cred-role", {
      namespaces: ["cred-role"],
      aws: { assumeRole: { roleArn, externalId: "tenant-42", sessionName: "ecr-tenant" } },
    });
    const secret = await waitForPullSecret(env, "cred-role", "cred-role");
    await waitForReady(env, "cred-role");
    const auths = dockerConfigOf(secret).auths;
    assert.deepEqual(Object.keys(auths), [`${roleAccount}.dkr.ecr.eu-west-1.amazonaws.com`]);
    assert.equal(Object.values(auths)[0]?.password, `${roleAccount}-auth-token`);

    const assumes = env.aws.calls().filter((c) => c.operation === "sts:AssumeRole");
    assert.equal(assumes.length, 1);
    const [assume] = assumes;
    assert.ok(assume !== undefined);
    assert.equal(assume.params.RoleArn, roleArn);
    assert.equal(assume.params.ExternalId, "tenant-42");
    assert.equal(assume.params.RoleSessionName, "ecr-tenant");
    assert.equal(assume.accessKeyId, motoDefaultCredentials.accessKeyId);
    const mints = env.aws.calls().filter((c) => c.operation === "ecr:GetAuthorizationToken");
    assert.equal(mints.length, 1);
    assert.match(mints[0]?.accessKeyId ?? "", /^ASIA/, "ECR was not called with the role's temporary keys");
  });
});

function allowing(actions: string[]): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: actions, Resource: "*" }],
  });
}

describe("credentials against moto with IAM authentication enforced", () => {
  let env: OperatorEnv;
  let secretAccessKey: string;
  let accessKeyId: string;

  /** moto counts authenticated actions from zero after reset-auth; "inf" lets setup run unchecked. */
  async function setAuthAfter(actions: string): Promise<void> {
    const res = await fetch(`${env.moto.endpoint}/moto-api/reset-auth`, { method: "POST", body: actions });
    assert.equal(res.status, 200, `moto reset-auth answered ${res.status}`);
  }

  before(async () => {
    env = await startOperatorEnv({ moto: { authentication: true } });
    await setAuthAfter("inf");
    const iam = new IAMClient({
      region: "us-east-1",
      endpoint: env.moto.endpoint,
      credentials: motoDefaultCredentials,
    });
    try {
      await iam.send(new CreateUserCommand({ UserName: "puller" }));
      await iam.send(
        new PutUserPolicyCommand({
          UserName: "puller",
          PolicyName: "ecr",
          PolicyDocument: allowing(["ecr:GetAuthorizationToken"]),
        }),
      );
      const { AccessKey: key } = await iam.send(new CreateAccessKeyCommand({ UserName: "puller" }));
      assert.ok(key?.AccessKeyId !== undefined && key.SecretAccessKey !== undefined);
      accessKeyId = key.AccessKeyId;
      secretAccessKey = key.SecretAccessKey;
    } finally {
      iam.destroy();
    }
    await setAuthAfter("0");
    await createKeysSecret(env, operatorNamespace, "iam-keys", {
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
    });
  });

  after(async () => {
    await env.stop();
  });

  it("mints with the keys of an IAM user allowed ecr:GetAuthorizationToken", async () => {
    await createNamespace(env, "iam-a");
    await createPullSecretCr(env, "iam", {
      namespaces: ["iam-a"],
      aws: { credentialsSecretRef: { namespace: operatorNamespace, name: "iam-keys" } },
    });
    const secret = await waitForPullSecret(env, "iam-a", "iam");
    await waitForReady(env, "iam");
    const auth = dockerConfigOf(secret).auths[`${motoAccount}.dkr.ecr.eu-west-1.amazonaws.com`];
    assert.equal(auth?.password, `${motoAccount}-auth-token`);
  });

  it("reports wrong keys as AwsAuthFailed without a secret and keeps the existing Secret", async () => {
    const before = await readSecret(env, "iam-a", "iam");
    const wrongSecret = "WrongSecretKey0000000000000000000000000000";
    env.aws.reset();
    await replaceCredentialsKey(env, "iam-keys", "AWS_SECRET_ACCESS_KEY", wrongSecret);
    const cr = await waitForReady(env, "iam", "AwsAuthFailed");
    const ready = readyCondition(cr);
    assert.equal(ready.status, "False");
    // moto answers an auth failure of a JSON-protocol call (ECR) with an XML body, so the SDK sees
    // only the status; real ECR names the code (SignatureDoesNotMatch) in JSON.
    assert.match(ready.message, /^ECR GetAuthorizationToken in eu-west-1 .*HTTP 403/);
    assert.ok(env.aws.count("ecr:GetAuthorizationToken") >= 1, "the wrong keys never reached moto");
    const shown = await everythingShownAbout(env, "iam");
    const logs = env.logs.join("\n");
    for (const secret of [wrongSecret, secretAccessKey, accessKeyId]) {
      assert.ok(!shown.includes(secret), "the CR status or an Event shows a secret");
      assert.ok(!logs.includes(secret), "the operator logged a secret");
    }
    const after = await readSecret(env, "iam-a", "iam");
    assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion);
    assert.deepEqual(after.data, before.data);

    await replaceCredentialsKey(env, "iam-keys", "AWS_SECRET_ACCESS_KEY", secretAccessKey);
    await eventually(async () => {
      assert.equal(readyCondition(await readCr(env, "iam")).reason, "Synced");
    });
  });
});
