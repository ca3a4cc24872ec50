import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { RequestOptions } from "node:https";
import { KubeError } from "./errors.ts";
import type { ClusterConnection } from "./kubeconfig.ts";
import { clusterPath, KubeClient, namespacedPath } from "./rest.ts";

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

type Reply = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback HTTP server that records requests and answers with the current `reply`. */
class FakeApiServer {
  readonly seen: Seen[] = [];
  reply: Reply = (_req, res) => res.end("{}");
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        this.seen.push({
          method: req.method ?? "",
          url: req.url ?? "",
          contentType: req.headers["content-type"],
          authorization: req.headers.authorization,
          body: Buffer.concat(chunks).toString(),
        });
        this.reply(req, res);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

function connection(server: string): ClusterConnection {
  return {
    getCurrentCluster: () => ({ server }),
    applyToHTTPSOptions: (options: RequestOptions) => {
      const headers = options.headers;
      if (headers === undefined || Array.isArray(headers)) throw new Error("expected a header object");
      (headers as Record<string, string>).authorization = "Bearer test-token";
      return Promise.resolve();
    },
  };
}

function status(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message });
}

describe("KubeClient", () => {
  const api = new FakeApiServer();
  let client: KubeClient;

  before(async () => {
    client = new KubeClient(connection(await api.listen()), { timeoutMs: 500 });
  });

  after(() => api.close());

  it("sends a merge patch with the field manager and returns the parsed object", async () => {
    api.reply = (_req, res) => res.end('{"metadata":{"name":"pull","resourceVersion":"7"}}');
    const path = namespacedPath("/api/v1", "team-a", "secrets", "pull");
    const result = await client.mergePatch<{ metadata: { resourceVersion: string } }>(
      path,
      { data: { k: "dg==" } },
      { fieldManager: "ecr-creds-refresher" },
    );
    assert.equal(result.metadata.resourceVersion, "7");
    const request = api.seen.at(-1);
    assert.equal(request?.method, "PATCH");
    assert.equal(request.url, "/api/v1/namespaces/team-a/secrets/pull?fieldManager=ecr-creds-refresher");
    assert.equal(request.contentType, "application/merge-patch+json");
    assert.equal(request.authorization, "Bearer test-token");
    assert.deepEqual(JSON.parse(request.body), { data: { k: "dg==" } });
  });

  it("escapes path segments and encodes selectors in the query", async () => {
    api.reply = (_req, res) => res.end('{"items":[]}');
    await client.get(clusterPath("/apis/g/v1", "things", "a/b", "status"), {
      labelSelector: "app.kubernetes.io/managed-by=x,owner in (a b)",
      limit: 5,
      continue: undefined,
    });
    assert.equal(
      api.seen.at(-1)?.url,
      "/apis/g/v1/things/a%2Fb/status?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dx%2Cowner+in+%28a+b%29&limit=5",
    );
  });

  it("turns a Status answer into a KubeError of its kind with the server's message", async () => {
    api.reply = (_req, res) => {
      res.statusCode = 409;
      res.end(status(409, "AlreadyExists", 'secrets "pull" already exists'));
    };
    await assert.rejects(
      client.create(namespacedPath("/api/v1", "team-a", "secrets"), { metadata: { name: "pull" } }),
      (err: unknown) =>
        err instanceof KubeError &&
        err.kind === "AlreadyExists" &&
        err.status === 409 &&
        err.message === 'secrets "pull" already exists',
    );
  });

  it("reports the Retry-After of a throttled request", async () => {
    api.reply = (_req, res) => {
      res.statusCode = 429;
      res.setHeader("retry-after", "3");
      res.end(status(429, "TooManyRequests", "slow down"));
    };
    await assert.rejects(
      client.get("/api/v1/namespaces"),
      (err: unknown) => err instanceof KubeError && err.kind === "Throttled" && err.retryAfterSeconds === 3,
    );
  });

  it("does not quote a body that is not JSON in its error", async () => {
    api.reply = (_req, res) => res.end('{"data":{"token":"c2VjcmV0"'); // cut short
    await assert.rejects(
      client.get("/api/v1/namespaces/a/secrets/b"),
      (err: unknown) =>
        err instanceof KubeError && err.kind === "Unknown" && !err.message.includes("c2VjcmV0"),
    );
  });

  it("gives up on a request that does not answer within the timeout", async () => {
    api.reply = () => undefined;
    const started = performance.now();
    await assert.rejects(
      client.get("/api/v1/namespaces"),
      (err: unknown) => err instanceof KubeError && err.kind === "Unavailable",
    );
    assert.ok(performance.now() - started < 5_000);
  });

  it("returns undefined for an empty 2xx body and accepts DELETE", async () => {
    api.reply = (_req, res) => {
      res.statusCode = 200;
      res.end();
    };
    await client.delete(namespacedPath("/api/v1", "team-a", "secrets", "pull"));
    assert.equal(api.seen.at(-1)?.method, "DELETE");
  });

  it("reports an unreachable API server as Unavailable", async () => {
    const closed = new FakeApiServer();
    const server = await closed.listen();
    await closed.close();
    const offline = new KubeClient(connection(server));
    await assert.rejects(
      offline.get("/api/v1/namespaces"),
      (err: unknown) =>
        err instanceof KubeError && err.kind === "Unavailable" && /ECONNREFUSED/.test(err.message),
    );
  });
});
