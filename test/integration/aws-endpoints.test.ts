// The operator pointed at AWS-compatible endpoints the way LocalStack users do: LocalStack's keys
// (`test`/`test`) and the SDK's endpoint variables, as a process so the variables are real. The
// catch-all AWS_ENDPOINT_URL points at a closed port, so every call that works proves its
// per-service variable (ECR and STS to moto, ECR Public to its stand-in) was honoured.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { startEcrPublicStandIn, type EcrPublicStandIn } from "../harness/ecr-public-standin.ts";
import { startOperatorProcess, type OperatorProcess } from "../harness/operator-process.ts";
import {
  createNamespace,
  createPullSecretCr,
  dockerConfigOf,
  operatorNamespace,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { freePort } from "../harness/ports.ts";

const hosts = {
  private: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  public: "public.ecr.aws",
};

function readyOf(cr: { status?: { conditions?: { type: string; message: string }[] } }): string {
  return cr.status?.conditions?.find((c) => c.type === "Ready")?.message ?? "";
}

describe("AWS-compatible endpoints with LocalStack-style keys", () => {
  let env: OperatorEnv;
  let ecrPublic: EcrPublicStandIn;
  let operator: OperatorProcess;

  async function keysSecret(name: string, data: Record<string, string>): Promise<void> {
    await env.core.createNamespacedSecret({
      namespace: operatorNamespace,
      body: { metadata: { name }, stringData: data },
    });
  }

  before(async () => {
    env = await startOperatorEnv({ startOperator: false });
    ecrPublic = await startEcrPublicStandIn();
    await keysSecret("localstack", { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" });
    const closed = `http://127.0.0.1:${await freePort()}`;
    operator = await startOperatorProcess({
      kubeconfigPath: env.plane.kubeconfigPath,
      args: [
        "--operator-namespace",
        operatorNamespace,
        "--credentials-secret",
        `${operatorNamespace}/localstack`,
        "--region",
        "eu-west-1",
        "--leader-elect=false",
        "--metrics-addr",
        "127.0.0.1:0",
        "--health-addr",
        "127.0.0.1:0",
      ],
      env: {
        AWS_ENDPOINT_URL: closed,
        AWS_ENDPOINT_URL_ECR: env.aws.endpoint,
        AWS_ENDPOINT_URL_ECR_PUBLIC: ecrPublic.endpoint,
        AWS_ENDPOINT_URL_STS: env.aws.endpoint,
      },
    });
  });

  after(async () => {
    await operator.stop();
    await env.stop();
    await ecrPublic.stop();
  });

  it("mints for ECR and ECR Public with keys test/test at their own endpoints", async () => {
    await createNamespace(env, "localstack");
    await createPullSecretCr(env, "localstack", {
      namespaces: ["localstack"],
      registries: Object.values(hosts),
    });
    const secret = await waitForPullSecret(env, "localstack", "localstack");
    await waitForReady(env, "localstack");
    const auths = dockerConfigOf(secret).auths;
    assert.deepEqual(Object.keys(auths).sort(), Object.values(hosts).sort());
    assert.equal(auths[hosts.public]?.password, ecrPublic.password);
    assert.deepEqual(
      ecrPublic.calls().map((c) => c.accessKeyId),
      ["test"],
      "ECR Public was called at AWS_ENDPOINT_URL_ECR_PUBLIC",
    );
    const ecrCalls = env.aws.calls().filter((c) => c.operation === "ecr:GetAuthorizationToken");
    assert.deepEqual(
      ecrCalls.map((c) => c.accessKeyId),
      ["test"],
    );
    assert.ok(
      !env.aws.calls().some((c) => c.operation.startsWith("ecr-public:")),
      "ECR Public reached the ECR endpoint",
    );
  });

  it("assumes a role at AWS_ENDPOINT_URL_STS with those keys", async () => {
    await createNamespace(env, "localstack-role");
    await createPullSecretCr(env, "localstack-role", {
      namespaces: ["localstack-role"],
      region: "us-east-1",
      aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/ecr-pull" } },
    });
    await waitForPullSecret(env, "localstack-role", "localstack-role");
    await waitForReady(env, "localstack-role");
    const assumed = env.aws.calls().filter((c) => c.operation === "sts:AssumeRole");
    assert.deepEqual(
      assumed.map((c) => c.accessKeyId),
      ["test"],
    );
    const minted = env.aws
      .calls()
      .filter((c) => c.operation === "ecr:GetAuthorizationToken" && c.region === "us-east-1");
    assert.equal(minted.length, 1);
    assert.notEqual(minted[0]?.accessKeyId, "test", "the token was minted as the role");
  });

  it("still names an empty or whitespace-only key id, and passes on that AWS refused keys", async () => {
    await keysSecret("empty-key", { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "test" });
    await keysSecret("blank-key", { AWS_ACCESS_KEY_ID: " \n", AWS_SECRET_ACCESS_KEY: "test" });
    await keysSecret("refused-key", {
      AWS_ACCESS_KEY_ID: "LSIAQAAAAAAVNCBMPNSG",
      AWS_SECRET_ACCESS_KEY: "test",
    });
    for (const [name, reason, message] of [
      ["empty-key", "CredentialsInvalid", /AWS_ACCESS_KEY_ID in the credentials Secret is empty/],
      ["blank-key", "CredentialsInvalid", /AWS_ACCESS_KEY_ID in the credentials Secret is only whitespace/],
      [
        "refused-key",
        "AwsAuthFailed",
        /LSIA\*\*\*\*PNSG: UnrecognizedClientException: AWS does not recognise the access key id/,
      ],
    ] as const) {
      if (name === "refused-key") env.aws.setFault("auth", { service: "ecr", region: "us-west-2" });
      await createPullSecretCr(env, name, {
        namespaces: ["localstack"],
        secretName: name,
        region: "us-west-2",
        aws: { credentialsSecretRef: { namespace: operatorNamespace, name } },
      });
      const cr = await waitForReady(env, name, reason);
      assert.match(readyOf(cr), message);
      assert.ok(!readyOf(cr).includes("LSIAQAAAAAAVNCBMPNSG"), "the key id is shown masked");
    }
    env.aws.setFault("none", { service: "ecr", region: "us-west-2" });
  });
});
