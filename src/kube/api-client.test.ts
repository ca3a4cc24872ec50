import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { createCertificateAuthority, issueCertificate } from "../../test/harness/certs.ts";
import { makeApiClient } from "./api-client.ts";

describe("makeApiClient", () => {
  let dir: string;
  let server: Server;
  let caPem: string;
  let connections = 0;
  const authorizations: (string | undefined)[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "api-client-test-"));
    const ca = await createCertificateAuthority(dir);
    caPem = ca.certPem;
    const serving = await issueCertificate(ca, {
      fileName: "server",
      commonName: "localhost",
      altNames: ["IP:127.0.0.1"],
      usage: "server",
    });
    server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      authorizations.push(req.headers.authorization);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "NamespaceList", apiVersion: "v1", metadata: {}, items: [] }));
    });
    server.on("secureConnection", () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
    await rm(dir, { recursive: true, force: true });
  });

  function kubeConfig(token: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: "test",
          server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
          caData: Buffer.from(caPem).toString("base64"),
          skipTLSVerify: false,
        },
      ],
      users: [{ name: "test", token }],
      contexts: [{ name: "test", cluster: "test", user: "test" }],
      currentContext: "test",
    });
    return kc;
  }

  it("reuses connections across the requests of every client made from one kubeconfig", async () => {
    const kc = kubeConfig("token-a");
    const first = makeApiClient(kc, CoreV1Api);
    const second = makeApiClient(kc, CoreV1Api);
    // undici may open a second connection while the first is being returned to its pool.
    await first.listNamespace();
    await second.listNamespace();
    const warm = connections;
    for (let i = 0; i < 5; i++) {
      await first.listNamespace();
      await second.listNamespace();
    }
    assert.ok(warm <= 2, `${warm} connections for two requests`);
    assert.equal(connections, warm, "ten more requests opened new connections");
  });

  it("applies the kubeconfig's credentials to each request", async () => {
    authorizations.length = 0;
    const kc = kubeConfig("token-b");
    const api = makeApiClient(kc, CoreV1Api);
    await api.listNamespace();
    await api.listNamespace();
    assert.deepEqual(authorizations, ["Bearer token-b", "Bearer token-b"]);
  });
});
