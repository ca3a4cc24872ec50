// A real registry client accepts what the operator writes: Debian's docker-registry (TLS, htpasswd
// with user AWS and the password inside moto's ECR token) holds an image, and skopeo opens it with
// the .dockerconfigjson taken from the managed Secret — and is refused with a tampered token.
//
// spec.registries accepts only ECR hosts, so the Secret's entry is keyed by the ECR host; the auth
// file given to skopeo is the Secret's .dockerconfigjson text with only that key renamed to the
// loopback registry's host:port. The credential itself is byte for byte the one in the Secret.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";

import { motoDefaultCredentials } from "../harness/moto.ts";
import {
  createNamespace,
  createPullSecretCr,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type DockerConfig,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { stopStarted } from "../harness/processes.ts";
import { startRegistry, type LocalRegistry } from "../harness/registry.ts";

const ecrHost = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const image = "ecr-test/app:latest";

/** The password inside the token moto hands out, asked of moto directly rather than through the operator. */
async function motoTokenPassword(endpoint: string): Promise<string> {
  const ecr = new ECRClient({ region: "eu-west-1", endpoint, credentials: motoDefaultCredentials });
  try {
    const { authorizationData } = await ecr.send(new GetAuthorizationTokenCommand({}));
    const decoded = Buffer.from(authorizationData?.[0]?.authorizationToken ?? "", "base64").toString();
    assert.match(decoded, /^AWS:./);
    return decoded.slice("AWS:".length);
  } finally {
    ecr.destroy();
  }
}

describe("a real registry client with the .dockerconfigjson the operator writes", () => {
  let env: OperatorEnv;
  let registry: LocalRegistry;
  let dir: string;
  let secretConfig: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ecr-registry-client-"));
    env = await startOperatorEnv();
    const password = await motoTokenPassword(env.moto.endpoint);
    registry = await startRegistry([{ username: "AWS", password }]);
    await registry.pushEmptyImage(image, { username: "AWS", password });

    await createNamespace(env, "client");
    await createPullSecretCr(env, "client", { namespaces: ["client"], registries: [ecrHost] });
    const secret = await waitForPullSecret(env, "client", "client");
    await waitForReady(env, "client");
    const encoded = secret.data?.[".dockerconfigjson"];
    assert.ok(encoded !== undefined);
    secretConfig = Buffer.from(encoded, "base64").toString();
  });

  after(async () => {
    await stopStarted(registry, env);
    await rm(dir, { recursive: true, force: true });
  });

  /** The Secret's .dockerconfigjson with its ECR host key renamed to the loopback registry. */
  function rekeyed(config: string): string {
    const key = JSON.stringify(ecrHost);
    assert.equal(config.split(key).length, 2, "the ECR host must appear exactly once, as the key");
    return config.replace(key, JSON.stringify(registry.host));
  }

  async function writeAuthFile(name: string, content: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content, { mode: 0o600 });
    return path;
  }

  it("opens the registry with the Secret's credential as skopeo's auth file", async () => {
    const authFile = await writeAuthFile("auth.json", rekeyed(secretConfig));
    const original = (JSON.parse(secretConfig) as DockerConfig).auths[ecrHost];
    const used = (JSON.parse(rekeyed(secretConfig)) as DockerConfig).auths[registry.host];
    assert.ok(original !== undefined);
    assert.deepEqual(used, original);
    const result = await registry.inspect(image, authFile);
    assert.deepEqual(result, { ok: true });
  });

  it("is refused with a tampered token", async () => {
    const config = JSON.parse(rekeyed(secretConfig)) as DockerConfig;
    const entry = config.auths[registry.host];
    assert.ok(entry !== undefined);
    const password = `${entry.password.slice(0, -1)}${entry.password.endsWith("x") ? "y" : "x"}`;
    config.auths[registry.host] = {
      username: entry.username,
      password,
      auth: Buffer.from(`${entry.username}:${password}`).toString("base64"),
    };
    const authFile = await writeAuthFile("tampered.json", JSON.stringify(config));
    const result = await registry.inspect(image, authFile);
    assert.ok(!result.ok, "skopeo opened the registry with a tampered token");
    assert.match(result.error, /unauthorized|authentication required/);
  });
});
