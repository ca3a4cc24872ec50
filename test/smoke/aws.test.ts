import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import { startMoto, motoDefaultCredentials, type Moto } from "../harness/moto.ts";

describe("the AWS stand-in", () => {
  let moto: Moto;

  before(async () => {
    moto = await startMoto();
  });

  after(async () => {
    await moto.stop();
  });

  it("returns an ECR authorization token that decodes to AWS:<password>", async () => {
    const ecr = new ECRClient({
      region: "eu-west-1",
      endpoint: moto.endpoint,
      credentials: motoDefaultCredentials,
    });
    const out = await ecr.send(new GetAuthorizationTokenCommand({}));
    const data = out.authorizationData?.[0];
    assert.ok(data?.authorizationToken !== undefined, "no authorization token");
    const decoded = Buffer.from(data.authorizationToken, "base64").toString();
    const [user, password] = decoded.split(":");
    assert.equal(user, "AWS");
    assert.ok(password !== undefined && password.length > 0, "empty password");
    assert.match(data.proxyEndpoint ?? "", /^https:\/\/\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com$/);
    ecr.destroy();
  });
});
