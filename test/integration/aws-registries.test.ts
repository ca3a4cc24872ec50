// Registry forms in spec.registries against the real API server, moto and (for ECR Public, which
// moto lacks) a loopback stand-in: several accounts and regions and public.ecr.aws in one
// .dockerconfigjson with one token per region, FIPS and China hosts, malformed hosts refused.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  ecrPublicTarget,
  startEcrPublicStandIn,
  type EcrPublicStandIn,
} from "../harness/ecr-public-standin.ts";
import {
  createNamespace,
  createPullSecretCr,
  dockerConfigOf,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";

const motoAccount = "123456789012";
const otherAccount = "210987654321";

describe("registries of several accounts, regions and ECR Public", () => {
  let env: OperatorEnv;
  let ecrPublic: EcrPublicStandIn;

  before(async () => {
    env = await startOperatorEnv();
    ecrPublic = await startEcrPublicStandIn();
    env.aws.routeTarget(ecrPublicTarget, ecrPublic.endpoint);
  });

  after(async () => {
    await env.stop();
    await ecrPublic.stop();
  });

  function mintRegions(operation: string): string[] {
    return env.aws
      .calls()
      .filter((c) => c.operation === operation)
      .map((c) => c.region ?? "unsigned")
      .sort();
  }

  it("writes two accounts in one region, a second region and public.ecr.aws with one call per region", async () => {
    const hosts = {
      euWest: `${motoAccount}.dkr.ecr.eu-west-1.amazonaws.com`,
      euWestOther: `${otherAccount}.dkr.ecr.eu-west-1.amazonaws.com`,
      usEast: `${motoAccount}.dkr.ecr.us-east-1.amazonaws.com`,
      public: "public.ecr.aws",
    };
    env.aws.reset();
    await createNamespace(env, "multi-a");
    await createNamespace(env, "multi-b");
    await createPullSecretCr(env, "multi", {
      namespaces: ["multi-a", "multi-b"],
      registries: Object.values(hosts),
    });
    const secret = await waitForPullSecret(env, "multi-a", "multi");
    const other = await waitForPullSecret(env, "multi-b", "multi");
    const cr = await waitForReady(env, "multi");
    assert.deepEqual(cr.status?.namespaces, { desired: 2, synced: 2 });
    assert.deepEqual(other.data, secret.data);

    const auths = dockerConfigOf(secret).auths;
    assert.deepEqual(Object.keys(auths).sort(), Object.values(hosts).sort());
    // One ECR token serves every account the identity may read in its region.
    assert.deepEqual(auths[hosts.euWestOther], auths[hosts.euWest]);
    assert.equal(auths[hosts.euWest]?.password, `${motoAccount}-auth-token`);
    assert.equal(auths[hosts.usEast]?.password, `${motoAccount}-auth-token`);
    assert.equal(auths[hosts.public]?.password, ecrPublic.password);
    for (const auth of Object.values(auths)) {
      assert.equal(auth.username, "AWS");
      assert.equal(Buffer.from(auth.auth, "base64").toString(), `AWS:${auth.password}`);
    }

    assert.deepEqual(mintRegions("ecr:GetAuthorizationToken"), ["eu-west-1", "us-east-1"]);
    assert.deepEqual(mintRegions("ecr-public:GetAuthorizationToken"), ["us-east-1"]);
    assert.equal(ecrPublic.calls().length, 1);
    assert.equal(env.aws.calls().length, 3, "no other AWS call");
  });

  it("mints for a FIPS host and a China host in the regions their names give", async () => {
    env.aws.reset();
    await createNamespace(env, "partitions");
    const fips = `${motoAccount}.dkr.ecr-fips.us-west-2.amazonaws.com`;
    const china = `${motoAccount}.dkr.ecr.cn-north-1.amazonaws.com.cn`;
    await createPullSecretCr(env, "partitions", { namespaces: ["partitions"], registries: [fips, china] });
    const secret = await waitForPullSecret(env, "partitions", "partitions");
    await waitForReady(env, "partitions");
    assert.deepEqual(Object.keys(dockerConfigOf(secret).auths).sort(), [china, fips].sort());
    assert.deepEqual(mintRegions("ecr:GetAuthorizationToken"), ["cn-north-1", "us-west-2"]);
  });

  it("refuses a registry that is not an ECR host", async () => {
    for (const host of ["123.dkr.ecr.eu-west-1.amazonaws.com", "registry.example.com", "public.ecr.aws/x"]) {
      await assert.rejects(
        createPullSecretCr(env, "malformed", { namespaces: ["default"], registries: [host] }),
        (err: unknown) => (err as { code?: number }).code === 422,
        `the API server accepted ${host}`,
      );
    }
  });
});
