import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";

import type { V1Secret } from "@kubernetes/client-node";

import { staticSource, type CredentialSource, type StaticCredentials } from "../aws/credentials.ts";
import { createTokenCache, type TokenCache } from "../aws/token-cache.ts";
import { EcrClientPool } from "../aws/token.ts";
import { ManualClock } from "../clock.ts";
import { answerAuthorizationToken } from "../../test/harness/ecr-client-stub.ts";
import { eventually } from "../../test/harness/wait.ts";
import { CredentialStore, type SecretRef } from "./credentials-store.ts";
import { isSpecProblem, resolveSpec, type ResolvedSpec } from "./plan/spec.ts";

const namespace = "ecr-system";
const region = "eu-west-1";
const endpoint = "http://127.0.0.1:1";
const original: StaticCredentials = { accessKeyId: "AKIAORIGINALKEY00001", secretAccessKey: "original" };
const rotated: StaticCredentials = { accessKeyId: "AKIAROTATEDKEY000002", secretAccessKey: "rotated" };

function secretOf(name: string, keys: StaticCredentials, resourceVersion: string): V1Secret {
  const b64 = (text: string): string => Buffer.from(text).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace, resourceVersion },
    data: { AWS_ACCESS_KEY_ID: b64(keys.accessKeyId), AWS_SECRET_ACCESS_KEY: b64(keys.secretAccessKey) },
  };
}

/** An API server that holds credentials Secrets by name and streams their changes to watches. */
async function fakeApiServer(): Promise<{
  server: Server;
  url: string;
  put(secret: V1Secret): void;
}> {
  const secrets = new Map<string, V1Secret>();
  const watches = new Map<string, Set<ServerResponse>>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "", "http://api");
    const name = /^metadata\.name=(.+)$/.exec(url.searchParams.get("fieldSelector") ?? "")?.[1] ?? "";
    res.setHeader("content-type", "application/json");
    if (url.searchParams.get("watch") === null) {
      const secret = secrets.get(name);
      res.end(
        JSON.stringify({
          kind: "SecretList",
          apiVersion: "v1",
          metadata: { resourceVersion: secret?.metadata?.resourceVersion ?? "1" },
          items: secret === undefined ? [] : [secret],
        }),
      );
      return;
    }
    res.flushHeaders();
    const open = watches.get(name) ?? new Set();
    watches.set(name, open);
    open.add(res);
    res.on("close", () => open.delete(res));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port bound");
  return {
    server,
    url: `http://127.0.0.1:${address.port}`,
    put(secret) {
      const name = secret.metadata?.name ?? "";
      const type = secrets.has(name) ? "MODIFIED" : "ADDED";
      secrets.set(name, secret);
      for (const res of watches.get(name) ?? []) res.write(`${JSON.stringify({ type, object: secret })}\n`);
    },
  };
}

/**
 * A pool holding the ECR client each source's mints will use, answering without sending anything;
 * `closed` lists the sources whose client was closed.
 */
async function answeringPool(
  sources: readonly CredentialSource[],
): Promise<{ pool: EcrClientPool; closed: string[] }> {
  const pool = new EcrClientPool();
  const closed: string[] = [];
  for (const source of sources) {
    // The settings createTokenCache mints with: this endpoint, the default timeout, no FIPS.
    const client = await pool.privateClient(source, region, {
      endpoint,
      requestTimeoutMs: 10_000,
      fips: false,
    });
    answerAuthorizationToken(client, {
      authorizationToken: Buffer.from(`AWS:token-of-${source.key}`).toString("base64"),
      proxyEndpoint: `https://123456789012.dkr.ecr.${region}.amazonaws.com`,
    });
    const destroy = client.destroy.bind(client);
    client.destroy = () => {
      closed.push(source.key);
      destroy();
    };
  }
  return { pool, closed };
}

function specFor(ref: SecretRef): ResolvedSpec {
  const spec = resolveSpec(
    {
      apiVersion: "ecr-creds-refresher.io/v1alpha1",
      kind: "ECRPullSecret",
      metadata: { name: ref.name },
      spec: { namespaces: ["*"], region, aws: { credentialsSecretRef: ref } },
    },
    { defaultRegion: undefined, trustedNamespaces: new Set([namespace]) },
  );
  assert.ok(!isSpecProblem(spec), "a valid spec");
  return spec;
}

function sourceOf(store: CredentialStore, spec: ResolvedSpec): CredentialSource {
  const source = store.resolve(spec);
  assert.ok(!("reason" in source), `credentials resolve: ${"reason" in source ? source.message : ""}`);
  return source;
}

describe("CredentialStore", () => {
  let api: Awaited<ReturnType<typeof fakeApiServer>>;
  let store: CredentialStore;
  let tokens: TokenCache;
  let closed: string[];
  let pool: EcrClientPool;
  const target = { kind: "private", region } as const;
  const first: SecretRef = { namespace, name: "team-a-keys" };
  const second: SecretRef = { namespace, name: "team-b-keys" };

  before(async () => {
    api = await fakeApiServer();
    api.put(secretOf(first.name, original, "1"));
    api.put(secretOf(second.name, original, "1"));
    ({ pool, closed } = await answeringPool([staticSource(original), staticSource(rotated)]));
    tokens = createTokenCache({
      clock: new ManualClock(Date.now()),
      clients: pool,
      endpoints: { ecr: endpoint },
    });
    store = new CredentialStore({
      kubeConfig: {
        getCurrentCluster: () => ({ server: api.url }),
        applyToHTTPSOptions: () => Promise.resolve(),
      },
      defaultSecret: undefined,
      defaultChain: () => assert.fail("the default chain is not used"),
      stsOptions: { region },
      onChange: () => undefined,
      onRetired: (sourceKeyPrefix) => {
        tokens.invalidate(sourceKeyPrefix);
      },
    });
  });

  after(async () => {
    await store.stop();
    pool.destroy();
    api.server.closeAllConnections();
    await new Promise((resolve) => api.server.close(resolve));
  });

  it("closes the SDK clients and drops the tokens of rotated-away credentials once no Secret holds them", async () => {
    const [specA, specB] = [specFor(first), specFor(second)];
    await store.prepare(specA);
    await store.prepare(specB);
    const old = sourceOf(store, specA);
    assert.equal(old.key, staticSource(original).key);
    await tokens.get(old, target);
    assert.equal(pool.size, 2);

    api.put(secretOf(first.name, rotated, "2"));
    await eventually(() => {
      assert.equal(sourceOf(store, specA).key, staticSource(rotated).key);
    });
    assert.notEqual(tokens.peek(old, target), undefined, "the other Secret still holds the old keys");
    assert.deepEqual(closed, []);

    api.put(secretOf(second.name, rotated, "2"));
    await eventually(() => {
      assert.deepEqual(closed, [old.key]);
    });
    assert.equal(tokens.peek(old, target), undefined);
    assert.equal(pool.size, 1);
    const current = await tokens.get(sourceOf(store, specB), target);
    assert.equal(current.password, `token-of-${staticSource(rotated).key}`);
    assert.deepEqual(closed, [old.key], "the new keys' client stays open");
  });
});
