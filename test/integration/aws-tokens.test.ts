// Token minting against moto: static keys, an assumed role, the shared cache, IAM-enforced auth
// failures, and endpoints that hang or refuse.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";

import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";

import { assumeRoleSource, staticSource } from "../../src/aws/credentials.ts";
import type { StaticCredentials } from "../../src/aws/credentials.ts";
import { AwsError } from "../../src/aws/errors.ts";
import { createTokenCache } from "../../src/aws/token-cache.ts";
import type { MintResult } from "../../src/aws/token-cache.ts";
import { EcrClientPool, mintPrivateToken } from "../../src/aws/token.ts";
import { ManualClock } from "../../src/clock.ts";
import { motoDefaultCredentials, startMoto } from "../harness/moto.ts";
import type { Moto } from "../harness/moto.ts";
import { freePort } from "../harness/ports.ts";

const hour = 3_600_000;
/** moto's default account, which owns anything not otherwise placed. */
const motoAccount = "123456789012";

function allowing(actions: string[]): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: actions, Resource: "*" }],
  });
}

/** Asserts that neither the error's message nor anything inspect shows of it contains a secret. */
function assertNoSecrets(err: AwsError, secrets: string[]): void {
  const shown = `${err.message}\n${inspect(err)}\n${JSON.stringify(err)}`;
  for (const secret of secrets) {
    assert.ok(!shown.includes(secret), `error reveals a secret: ${err.message}`);
  }
}

async function rejectsWith(promise: Promise<unknown>): Promise<AwsError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof AwsError, `expected an AwsError, got ${inspect(err)}`);
    return err;
  }
  assert.fail("expected the call to fail");
}

describe("minting ECR tokens against moto", () => {
  let moto: Moto;
  let clients: EcrClientPool;

  before(async () => {
    moto = await startMoto();
    clients = new EcrClientPool();
  });

  after(async () => {
    clients.destroy();
    await moto.stop();
  });

  it("mints a private token with moto's password and an expiry 12 h after minting", async () => {
    const clock = new ManualClock(Date.now());
    const token = await mintPrivateToken(staticSource(motoDefaultCredentials), "eu-west-1", {
      clock,
      clients,
      endpoint: moto.endpoint,
    });
    assert.equal(token.kind, "private");
    assert.equal(token.region, "eu-west-1");
    assert.equal(token.username, "AWS");
    assert.equal(token.password, `${motoAccount}-auth-token`);
    assert.equal(token.proxyEndpoint, `https://${motoAccount}.dkr.ecr.eu-west-1.amazonaws.com`);
    // Whole seconds, as the Secrets' annotations keep them.
    const mintedAt = Math.floor(clock.now() / 1000) * 1000;
    assert.equal(token.mintedAt, mintedAt);
    assert.equal(token.expiresAt, mintedAt + 12 * hour);
    assert.equal(token.reportedExpiresAt, Date.UTC(2015, 0, 1));
  });

  it("keeps the password out of JSON and inspect output of a token", async () => {
    const token = await mintPrivateToken(staticSource(motoDefaultCredentials), "eu-west-1", {
      clock: new ManualClock(Date.now()),
      clients,
      endpoint: moto.endpoint,
    });
    for (const shown of [JSON.stringify(token), inspect(token)]) {
      assert.ok(!shown.includes(token.password), shown);
      assert.match(shown, /redacted/);
    }
  });

  it("reuses one SDK client for repeated mints with the same source and region", async () => {
    const pool = new EcrClientPool();
    const source = staticSource(motoDefaultCredentials);
    const options = { clock: new ManualClock(Date.now()), clients: pool, endpoint: moto.endpoint };
    await mintPrivateToken(source, "eu-west-1", options);
    await mintPrivateToken(source, "eu-west-1", options);
    assert.equal(pool.size, 1);
    await mintPrivateToken(source, "us-east-1", options);
    assert.equal(pool.size, 2);
    pool.forget(source.key);
    assert.equal(pool.size, 0);
  });

  it("mints a token for the account of an assumed role", async () => {
    const clock = new ManualClock(Date.now());
    const roleAccount = "210987654321";
    const source = assumeRoleSource(
      staticSource(motoDefaultCredentials),
      { roleArn: `arn:aws:iam::${roleAccount}:role/ecr-pull`, externalId: "tenant-a", sessionName: "ecr" },
      { clock, endpoint: moto.endpoint, region: "eu-west-1" },
    );
    const token = await mintPrivateToken(source, "eu-west-1", { clock, clients, endpoint: moto.endpoint });
    assert.equal(token.password, `${roleAccount}-auth-token`);
    assert.equal(token.proxyEndpoint, `https://${roleAccount}.dkr.ecr.eu-west-1.amazonaws.com`);
  });

  it("reuses assumed-role credentials instead of calling STS for every use", async () => {
    const source = assumeRoleSource(
      staticSource(motoDefaultCredentials),
      { roleArn: "arn:aws:iam::210987654321:role/ecr-pull" },
      { clock: new ManualClock(Date.now()), endpoint: moto.endpoint, region: "eu-west-1" },
    );
    const [first, second] = await Promise.all([source.provider(), source.provider()]);
    const third = await source.provider();
    assert.ok(first.accessKeyId.startsWith("ASIA"), "moto hands out temporary keys for a role");
    assert.equal(second.accessKeyId, first.accessKeyId);
    assert.equal(third.accessKeyId, first.accessKeyId);
    assert.ok(first.expiration !== undefined && first.expiration.getTime() > Date.now());
  });

  it("mints once for concurrent callers through the cache that createTokenCache builds", async () => {
    const results: MintResult[] = [];
    const pool = new EcrClientPool();
    const cache = createTokenCache({
      clock: new ManualClock(Date.now()),
      clients: pool,
      endpoints: { ecr: moto.endpoint },
      onMint: (_target, result) => results.push(result),
    });
    const source = staticSource(motoDefaultCredentials);
    const tokens = await Promise.all(
      Array.from({ length: 5 }, () => cache.get(source, { kind: "private", region: "eu-west-1" })),
    );
    assert.deepEqual(results, ["success"]);
    assert.equal(new Set(tokens).size, 1);
    assert.equal(tokens[0]?.password, `${motoAccount}-auth-token`);
    pool.destroy();
  });

  it("fails with Unavailable within the request timeout when the endpoint never answers", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const address = silent.address();
    assert.ok(address !== null && typeof address === "object");
    const pool = new EcrClientPool();
    try {
      const started = Date.now();
      const err = await rejectsWith(
        mintPrivateToken(staticSource(motoDefaultCredentials), "eu-west-1", {
          clock: new ManualClock(started),
          clients: pool,
          endpoint: `http://127.0.0.1:${address.port}`,
          requestTimeoutMs: 300,
        }),
      );
      assert.equal(err.kind, "Unavailable");
      assert.equal(err.retryable, true);
      assert.ok(Date.now() - started < 10_000, "the request timeout did not bound the call");
    } finally {
      pool.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("fails with Unavailable when nothing listens at the endpoint", async () => {
    const port = await freePort();
    const pool = new EcrClientPool();
    try {
      const err = await rejectsWith(
        mintPrivateToken(staticSource(motoDefaultCredentials), "eu-west-1", {
          clock: new ManualClock(Date.now()),
          clients: pool,
          endpoint: `http://127.0.0.1:${port}`,
        }),
      );
      assert.equal(err.kind, "Unavailable");
      assert.equal(err.code, "ECONNREFUSED");
    } finally {
      pool.destroy();
    }
  });

  it("rejects a malformed region as InvalidInput without calling AWS", async () => {
    const err = await rejectsWith(
      mintPrivateToken(staticSource(motoDefaultCredentials), "Europe", {
        clock: new ManualClock(0),
        clients,
        endpoint: moto.endpoint,
      }),
    );
    assert.equal(err.kind, "InvalidInput");
    assert.match(err.message, /"Europe" is not an AWS region name/);
  });
});

describe("minting with IAM authentication enforced by moto", () => {
  let moto: Moto;
  let clients: EcrClientPool;
  let puller: StaticCredentials;
  let noEcr: StaticCredentials;
  const roleArn = `arn:aws:iam::${motoAccount}:role/ecr-pull`;

  /** moto counts authenticated actions from zero after reset-auth; "inf" lets setup run unchecked. */
  async function setAuthAfter(actions: string): Promise<void> {
    const res = await fetch(`${moto.endpoint}/moto-api/reset-auth`, { method: "POST", body: actions });
    assert.equal(res.status, 200, `moto reset-auth answered ${res.status}`);
  }

  async function createUser(iam: IAMClient, name: string, policy?: string): Promise<StaticCredentials> {
    await iam.send(new CreateUserCommand({ UserName: name }));
    if (policy !== undefined) {
      await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: "ecr", PolicyDocument: policy }));
    }
    const { AccessKey: key } = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
    assert.ok(key?.AccessKeyId !== undefined && key.SecretAccessKey !== undefined);
    return { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
  }

  before(async () => {
    moto = await startMoto({ authentication: true });
    clients = new EcrClientPool();
    await setAuthAfter("inf");
    const iam = new IAMClient({
      region: "us-east-1",
      endpoint: moto.endpoint,
      credentials: motoDefaultCredentials,
    });
    try {
      puller = await createUser(iam, "puller", allowing(["ecr:GetAuthorizationToken", "sts:AssumeRole"]));
      noEcr = await createUser(iam, "no-ecr");
      await iam.send(
        new CreateRoleCommand({
          RoleName: "ecr-pull",
          AssumeRolePolicyDocument: JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                // moto compares principals literally: an account's :root does not cover its users.
                Principal: { AWS: `arn:aws:iam::${motoAccount}:user/puller` },
                Action: "sts:AssumeRole",
              },
            ],
          }),
        }),
      );
      await iam.send(
        new PutRolePolicyCommand({
          RoleName: "ecr-pull",
          PolicyName: "ecr",
          PolicyDocument: allowing(["ecr:GetAuthorizationToken"]),
        }),
      );
    } finally {
      iam.destroy();
    }
    await setAuthAfter("0");
  });

  after(async () => {
    clients.destroy();
    await moto.stop();
  });

  const mint = (credentials: StaticCredentials) =>
    mintPrivateToken(staticSource(credentials), "eu-west-1", {
      clock: new ManualClock(Date.now()),
      clients,
      endpoint: moto.endpoint,
    });

  it("mints with the keys of an IAM user allowed ecr:GetAuthorizationToken", async () => {
    const token = await mint(puller);
    assert.equal(token.password, `${motoAccount}-auth-token`);
  });

  it("reports a wrong secret key as AwsAuth without revealing either secret", async () => {
    const wrong = { ...puller, secretAccessKey: "WrongSecretKey0000000000000000000000000000" };
    const err = await rejectsWith(mint(wrong));
    assert.equal(err.kind, "AwsAuth");
    assert.equal(err.retryable, false);
    assert.match(err.message, /^ECR GetAuthorizationToken in eu-west-1 with static credentials AKIA\*\*\*\*/);
    assertNoSecrets(err, [wrong.secretAccessKey, puller.secretAccessKey, puller.accessKeyId]);
  });

  it("reports an access key id that IAM does not know as AwsAuth", async () => {
    const err = await rejectsWith(
      mint({ accessKeyId: "AKIAUNKNOWNKEY000001", secretAccessKey: "unknown-secret" }),
    );
    assert.equal(err.kind, "AwsAuth");
    assertNoSecrets(err, ["unknown-secret", "AKIAUNKNOWNKEY000001"]);
  });

  it("reports a user without ECR permission as AwsAuth", async () => {
    const err = await rejectsWith(mint(noEcr));
    assert.equal(err.kind, "AwsAuth");
    assert.equal(err.httpStatus, 403);
    assertNoSecrets(err, [noEcr.secretAccessKey, noEcr.accessKeyId]);
  });

  it("mints through a role assumed with the user's keys", async () => {
    const clock = new ManualClock(Date.now());
    const source = assumeRoleSource(
      staticSource(puller),
      { roleArn },
      { clock, endpoint: moto.endpoint, region: "eu-west-1" },
    );
    const token = await mintPrivateToken(source, "eu-west-1", { clock, clients, endpoint: moto.endpoint });
    assert.equal(token.password, `${motoAccount}-auth-token`);
  });

  it("reports a failed AssumeRole as AwsAuth naming the role, without revealing a secret", async () => {
    const clock = new ManualClock(Date.now());
    const wrong = { ...puller, secretAccessKey: "WrongSecretKey0000000000000000000000000000" };
    const source = assumeRoleSource(
      staticSource(wrong),
      { roleArn },
      { clock, endpoint: moto.endpoint, region: "eu-west-1" },
    );
    const err = await rejectsWith(
      mintPrivateToken(source, "eu-west-1", { clock, clients, endpoint: moto.endpoint }),
    );
    assert.equal(err.kind, "AwsAuth");
    assert.equal(err.code, "SignatureDoesNotMatch");
    assert.match(
      err.message,
      /with role arn:aws:iam::123456789012:role\/ecr-pull assumed with .*: getting credentials failed: SignatureDoesNotMatch: /,
    );
    assertNoSecrets(err, [wrong.secretAccessKey, puller.secretAccessKey, puller.accessKeyId]);
  });
});
