import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { KubeError } from "./errors.ts";
import { ClusterAccess, type ClusterConnection } from "./kubeconfig/cluster-access.ts";
import { clusterPath, KubeClient, namespacedPath, readBody } from "./rest.ts";
import {
  connection,
  FakeApiServer,
  pooledConnection,
  type Reply,
} from "../../test/harness/fake-apiserver.ts";
import { eventually } from "../../test/harness/wait.ts";

/** The server `client`'s connection points at. */
function serverOf(client: KubeClient): string {
  const cluster = client.connection.getCurrentCluster();
  if (cluster === null) throw new Error("no current cluster");
  return cluster.server;
}

function status(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message });
}

/**
 * The two ways a request goes out: node's https (a connection through a proxy, or client-node's
 * KubeConfig), and the operator's own connection with its HTTP/1.1 pool for whole answers.
 */
const transports: { name: string; connect: (server: string, rejected?: unknown[]) => ClusterConnection }[] = [
  { name: "on node's https", connect: connection },
  { name: "on the connection's HTTP/1.1 pool", connect: pooledConnection },
];

for (const { name, connect } of transports)
  describe(`KubeClient ${name}`, { timeout: 20_000 }, () => {
    const api = new FakeApiServer();
    let client: KubeClient;
    const pools: ClusterConnection[] = [];
    const connectTo = (server: string, rejected?: unknown[]): ClusterConnection => {
      const made = connect(server, rejected);
      pools.push(made);
      return made;
    };

    before(async () => {
      client = new KubeClient(connectTo(await api.listen()), { timeoutMs: 500 });
    });

    after(async () => {
      for (const made of pools) if (made instanceof ClusterAccess) made.close();
      await api.close();
    });

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

    it("sends requests under the server URL's path, and resolves dot segments as a URL does", async () => {
      api.reply = (_req, res) => res.end('{"items":[]}');
      const under = new KubeClient(connectTo(`${serverOf(client)}/prefix/`), { timeoutMs: 500 });
      await under.get("/api/v1/namespaces", { limit: 1 });
      assert.equal(api.seen.at(-1)?.url, "/prefix/api/v1/namespaces?limit=1");
      await under.get("/api/v1/things/../namespaces");
      assert.equal(api.seen.at(-1)?.url, "/prefix/api/v1/namespaces");
    });

    // The operator's connection keeps its server; client-node's KubeConfig can switch.
    it("follows the connection to another server", { skip: connect === pooledConnection }, async () => {
      const other = new FakeApiServer();
      try {
        let server = serverOf(client);
        const moving = new KubeClient(
          { ...connection(server), getCurrentCluster: () => ({ server }) },
          { timeoutMs: 500 },
        );
        api.reply = (_req, res) => res.end("{}");
        other.reply = (_req, res) => res.end("{}");
        await moving.get("/api/v1/namespaces/a");
        server = await other.listen();
        await moving.get("/api/v1/namespaces/b");
        assert.equal(api.seen.at(-1)?.url, "/api/v1/namespaces/a");
        assert.equal(other.seen.at(-1)?.url, "/api/v1/namespaces/b");
      } finally {
        await other.close();
      }
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
      const offline = new KubeClient(connectTo(server));
      await assert.rejects(
        offline.get("/api/v1/namespaces"),
        (err: unknown) =>
          err instanceof KubeError && err.kind === "Unavailable" && /ECONNREFUSED/.test(err.message),
      );
    });

    it("waits the Retry-After a 429 asks for before sending a write again", async () => {
      const clock = new ManualClock();
      const throttled = new KubeClient(client.connection, { clock, timeoutMs: 500 });
      let answers = 0;
      api.reply = (_req, res) => {
        answers += 1;
        if (answers <= 2) {
          res.statusCode = answers === 1 ? 429 : 503;
          res.setHeader("retry-after", "2");
          res.end(status(res.statusCode, "TooManyRequests", "slow down"));
          return;
        }
        res.end('{"metadata":{"resourceVersion":"9"}}');
      };
      const before = api.seen.length;
      const patched = throttled.mergePatch<{ metadata: { resourceVersion: string } }>(
        "/api/v1/namespaces/a/secrets/b",
        {
          data: {},
        },
      );
      await eventually(() => {
        assert.equal(clock.pendingTimers(), 1);
      });
      clock.advance(1999);
      assert.equal(api.seen.length - before, 1, "not sent again before the 2 s the server asked for");
      clock.advance(1);
      await eventually(() => {
        assert.equal(answers, 2);
        assert.equal(clock.pendingTimers(), 1);
      });
      clock.advance(2000);
      assert.equal((await patched).metadata.resourceVersion, "9");
      assert.deepEqual(
        api.seen.slice(before).map((r) => r.method),
        ["PATCH", "PATCH", "PATCH"],
      );
    });

    it("leaves a Retry-After longer than its bound, a 5xx without one, and the fourth retry to the caller", async () => {
      const clock = new ManualClock();
      const throttled = new KubeClient(client.connection, { clock, timeoutMs: 500, maxRetryAfterMs: 5000 });
      const answer =
        (code: number, retryAfter: string | undefined): Reply =>
        (_req, res) => {
          res.statusCode = code;
          if (retryAfter !== undefined) res.setHeader("retry-after", retryAfter);
          res.end(status(code, "TooManyRequests", "slow down"));
        };
      api.reply = answer(429, "6");
      await assert.rejects(
        throttled.create("/api/v1/namespaces/a/secrets", {}),
        (err: unknown) => err instanceof KubeError && err.kind === "Throttled" && err.retryAfterSeconds === 6,
      );
      api.reply = answer(500, undefined);
      await assert.rejects(throttled.create("/api/v1/namespaces/a/secrets", {}), KubeError);
      assert.equal(clock.pendingTimers(), 0);

      api.reply = answer(429, "1");
      const before = api.seen.length;
      const gaveUp = assert.rejects(throttled.create("/api/v1/namespaces/a/secrets", {}), KubeError);
      for (let retry = 1; retry <= 3; retry++) {
        await eventually(() => {
          assert.equal(api.seen.length - before, retry);
          assert.equal(clock.pendingTimers(), 1);
        });
        clock.advance(1000);
      }
      await gaveUp;
      assert.equal(api.seen.length - before, 4);
    });

    it("tells the connection which request got 401, so an exec credential is run again", async () => {
      const rejected: unknown[] = [];
      const server = (client.connection.getCurrentCluster() ?? { server: "" }).server;
      const withHook = new KubeClient(connectTo(server, rejected), { timeoutMs: 500 });
      api.reply = (_req, res) => {
        res.statusCode = 401;
        res.end(status(401, "Unauthorized", "Unauthorized"));
      };
      await assert.rejects(
        withHook.get("/api/v1/namespaces"),
        (err: unknown) => err instanceof KubeError && err.kind === "Unauthorized",
      );
      const watch = await withHook.open(
        "/api/v1/namespaces",
        { watch: "true" },
        new AbortController().signal,
      );
      watch.resume();
      assert.equal(rejected.length, 2, "the request and the watch");
    });

    it("lets go of a response once its body is read, so a kept-alive socket does not keep the body", async () => {
      api.reply = (_req, res) => res.end('{"items":[{"metadata":{"name":"a"}}]}');
      const response = await client.open("/api/v1/secrets", {}, new AbortController().signal);
      const events = ["data", "end", "close"] as const;
      const before = events.map((event) => response.listenerCount(event));
      assert.equal(await readBody(response), '{"items":[{"metadata":{"name":"a"}}]}');
      assert.deepEqual(
        events.map((event) => response.listenerCount(event)),
        before,
      );
      response.emit("error", new Error("late"));
    });

    it("lets go of a response that closes before its body ends", async () => {
      api.reply = (_req, res) => {
        res.write('{"items":[');
        setTimeout(() => res.destroy(), 20);
      };
      const response = await client.open("/api/v1/secrets", {}, new AbortController().signal);
      const events = ["data", "end", "close"] as const;
      const before = events.map((event) => response.listenerCount(event));
      await assert.rejects(readBody(response), Error);
      assert.deepEqual(
        events.map((event) => response.listenerCount(event)),
        before,
      );
    });
  });
