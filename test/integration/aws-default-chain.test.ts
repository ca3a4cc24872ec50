// The operator's own identity from the AWS SDK default chain, with the operator as a child process
// so the chain reads a real environment: IRSA (web identity token file + role ARN, exchanged at STS)
// and EKS Pod Identity (a credentials endpoint on loopback that the test serves like the EKS agent).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { startOperatorProcess, type OperatorProcess } from "../harness/operator-process.ts";
import {
  createNamespace,
  createPullSecretCr,
  deleteCr,
  dockerConfigOf,
  operatorNamespace,
  readCr,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";

/** Runs the operator on the default chain (no --credentials-secret) with `env` until `body` ends. */
async function withOperatorProcess(
  env: OperatorEnv,
  awsEnv: Record<string, string>,
  body: (operator: OperatorProcess) => Promise<void>,
): Promise<void> {
  const operator = await startOperatorProcess({
    kubeconfigPath: env.plane.kubeconfigPath,
    args: ["--operator-namespace", operatorNamespace, "--region", "eu-west-1", "--log-level", "debug"],
    // AWS_ENDPOINT_URL is both the operator's --aws-endpoint-url and what the SDK's own STS client
    // for web identity reads: it does not take the endpoint of the client it serves.
    env: { AWS_ENDPOINT_URL: env.aws.endpoint, ...awsEnv },
  });
  try {
    await body(operator);
  } catch (err) {
    console.error(operator.logs().slice(-40).join("\n"));
    throw err;
  } finally {
    await operator.stop();
  }
}

/** Deletes the CR while the operator runs, so the next operator starts with no CR of this test. */
async function deleteAndWait(env: OperatorEnv, name: string): Promise<void> {
  await deleteCr(env, name);
  await eventually(
    async () => {
      await assert.rejects(readCr(env, name), (err: unknown) => (err as { code?: number }).code === 404);
    },
    { timeoutMs: 30_000, message: `${name} deleted` },
  );
}

interface CredentialsRequest {
  path: string;
  authorization: string | undefined;
}

interface PodIdentityAgent {
  readonly url: string;
  requests(): CredentialsRequest[];
  stop(): Promise<void>;
}

/** Serves temporary credentials like the EKS Pod Identity agent, to callers with the right token. */
async function startPodIdentityAgent(
  authorizationToken: string,
  credentials: { AccessKeyId: string; SecretAccessKey: string; Token: string },
): Promise<PodIdentityAgent> {
  const seen: CredentialsRequest[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ path: req.url ?? "", authorization: req.headers.authorization });
    if (req.url !== "/v1/credentials" || req.headers.authorization !== authorizationToken) {
      res.writeHead(403, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "AccessDeniedException", message: "wrong token" }));
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...credentials, Expiration: new Date(Date.now() + 3_600_000).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/credentials`,
    requests: () => [...seen],
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

describe("the operator's own identity from the AWS default chain, as a process", () => {
  let env: OperatorEnv;
  let dir: string;

  before(async () => {
    env = await startOperatorEnv({ startOperator: false });
    dir = await mkdtemp(join(tmpdir(), "ecr-default-chain-"));
  });

  after(async () => {
    await env.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("exchanges an IRSA web identity token at STS AssumeRoleWithWebIdentity and mints with the role", async () => {
    const roleAccount = "333344445555";
    const roleArn = `arn:aws:iam::${roleAccount}:role/irsa-ecr`;
    const webIdentityToken = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.irsa-test";
    const tokenFile = join(dir, "irsa-token");
    await writeFile(tokenFile, webIdentityToken);
    env.aws.reset();
    await createNamespace(env, "irsa");
    await createPullSecretCr(env, "irsa", { namespaces: ["irsa"] });

    await withOperatorProcess(
      env,
      { AWS_ROLE_ARN: roleArn, AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_SESSION_NAME: "irsa-test" },
      async (operator) => {
        const secret = await waitForPullSecret(env, "irsa", "irsa");
        await waitForReady(env, "irsa");
        const exchanges = env.aws.calls().filter((c) => c.operation === "sts:AssumeRoleWithWebIdentity");
        assert.equal(exchanges.length, 1);
        const [exchange] = exchanges;
        assert.ok(exchange !== undefined);
        assert.equal(exchange.params.RoleArn, roleArn);
        assert.equal(exchange.params.RoleSessionName, "irsa-test");
        assert.equal(exchange.params.WebIdentityToken, webIdentityToken);
        const mints = env.aws.calls().filter((c) => c.operation === "ecr:GetAuthorizationToken");
        assert.equal(mints.length, 1);
        const [mint] = mints;
        assert.ok(mint !== undefined);
        assert.match(mint.accessKeyId ?? "", /^ASIA/, "ECR was not called with the role's keys");
        assert.ok(exchange.at <= mint.at, "ECR was called before STS");
        const auths = dockerConfigOf(secret).auths;
        assert.deepEqual(Object.keys(auths), [`${roleAccount}.dkr.ecr.eu-west-1.amazonaws.com`]);
        assert.equal(Object.values(auths)[0]?.password, `${roleAccount}-auth-token`);
        assert.ok(
          !operator.logs().join("\n").includes(webIdentityToken),
          "the web identity token was logged",
        );
        await deleteAndWait(env, "irsa");
      },
    );
  });

  it("takes EKS Pod Identity credentials from the agent's endpoint with the authorization token", async () => {
    const authorizationToken = "pod-identity-authorization-token";
    const tokenFile = join(dir, "pod-identity-token");
    await writeFile(tokenFile, authorizationToken);
    const credentials = {
      AccessKeyId: "ASIAPODIDENTITY00001",
      SecretAccessKey: "pod-identity-secret-access-key",
      Token: "pod-identity-session-token",
    };
    const agent = await startPodIdentityAgent(authorizationToken, credentials);
    env.aws.reset();
    await createNamespace(env, "pod-identity");
    await createPullSecretCr(env, "pod-identity", { namespaces: ["pod-identity"] });
    try {
      await withOperatorProcess(
        env,
        { AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile },
        async (operator) => {
          const secret = await waitForPullSecret(env, "pod-identity", "pod-identity");
          await waitForReady(env, "pod-identity");
          assert.deepEqual(agent.requests(), [
            { path: "/v1/credentials", authorization: authorizationToken },
          ]);
          const signers = env.aws.calls().map((c) => `${c.operation} ${c.accessKeyId ?? "-"}`);
          assert.deepEqual(signers, [`ecr:GetAuthorizationToken ${credentials.AccessKeyId}`]);
          const auth = dockerConfigOf(secret).auths["123456789012.dkr.ecr.eu-west-1.amazonaws.com"];
          assert.equal(auth?.password, "123456789012-auth-token");
          const logs = operator.logs().join("\n");
          for (const secretValue of [authorizationToken, credentials.SecretAccessKey, credentials.Token]) {
            assert.ok(!logs.includes(secretValue), "the operator logged a secret");
          }
          await deleteAndWait(env, "pod-identity");
        },
      );
    } finally {
      await agent.stop();
    }
  });
});
