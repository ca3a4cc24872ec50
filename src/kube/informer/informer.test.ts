import assert from "node:assert/strict";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import type { KubernetesObject } from "@kubernetes/client-node";

import { eventually } from "../../../test/harness/wait.ts";
import { ManualClock } from "../../clock.ts";
import type { KubeError } from "../errors.ts";
import { dropManagedFields, Informer } from "./informer.ts";
import { wholeListBytes } from "./list-reader.ts";
import type { InformerOptions } from "./informer.ts";

/** Tests with sockets fail instead of hanging when the informer does not let go. */
const testTimeoutMs = 20_000;

describe("dropManagedFields", () => {
  it("removes metadata.managedFields and keeps the rest of the object", () => {
    const raw: KubernetesObject = {
      kind: "Secret",
      metadata: {
        name: "a",
        labels: { x: "y" },
        managedFields: [{ manager: "kubectl", operation: "Update" }],
      },
    };
    assert.deepEqual(dropManagedFields(raw), { kind: "Secret", metadata: { name: "a", labels: { x: "y" } } });
  });
});

/** A loopback TCP server that answers each connection with `onConnection`; counts and tracks them. */
async function tcpServer(onConnection: (socket: Socket) => void): Promise<{
  port: number;
  connections: () => number;
  openSockets: () => number;
  close: () => Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => sockets.delete(socket));
    // Read and discard, so the server sees the client hang up.
    socket.resume();
    onConnection(socket);
  });
  const port = await listenOnLoopback(server);
  return {
    port,
    connections: () => connections,
    openSockets: () => sockets.size,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}

/** Listens on a free loopback port; resolves with it. */
async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port bound");
  return address.port;
}

function kubeConfigFor(port: number, scheme: "https" | "http" = "https"): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "local", server: `${scheme}://127.0.0.1:${port}`, skipTLSVerify: scheme === "http" }],
    users: [{ name: "nobody" }],
    contexts: [{ name: "local", cluster: "local", user: "nobody" }],
    currentContext: "local",
  });
  return kc;
}

function newInformer(
  port: number,
  options: Partial<InformerOptions<KubernetesObject>> = {},
): { informer: Informer<KubernetesObject>; clock: ManualClock; errors: KubeError[] } {
  const clock = new ManualClock();
  const errors: KubeError[] = [];
  const informer = new Informer<KubernetesObject>({
    name: "secrets",
    kubeConfig: kubeConfigFor(port),
    path: "/api/v1/secrets",
    clock,
    hooks: { onError: (err) => errors.push(err) },
    ...options,
  });
  return { informer, clock, errors };
}

describe("Informer", () => {
  it(
    "retries a failing list with doubling backoff up to the cap, and never gives up",
    { timeout: testTimeoutMs },
    async () => {
      const server = await tcpServer((socket) => {
        socket.resetAndDestroy();
      });
      const { informer, clock, errors } = newInformer(server.port, {
        backoff: { baseMs: 1000, maxMs: 4000 },
      });
      informer.start();
      try {
        const delays = [1000, 2000, 4000, 4000, 4000];
        for (const [attempt, delay] of delays.entries()) {
          await eventually(() => {
            assert.equal(errors.length, attempt + 1);
          });
          assert.equal(errors[attempt]?.kind, "Unavailable");
          assert.equal(clock.pendingTimers(), 1, "only the backoff timer is pending");
          clock.advance(delay - 1);
          assert.equal(clock.pendingTimers(), 1, `retry ${attempt + 1} waits the full ${delay} ms`);
          clock.advance(1);
          assert.equal(clock.pendingTimers(), 0, `retry ${attempt + 1} starts after ${delay} ms`);
        }
        await eventually(() => {
          assert.equal(server.connections(), delays.length + 1);
        });
        assert.equal(informer.hasSynced(), false);
      } finally {
        await informer.stop();
        await server.close();
      }
    },
  );

  it(
    "abandons a list request that sends nothing for watchTimeoutSeconds plus grace",
    { timeout: testTimeoutMs },
    async () => {
      const server = await tcpServer(() => undefined);
      const { informer, clock, errors } = newInformer(server.port, {
        watchTimeoutSeconds: 2,
        stallGraceMs: 500,
      });
      informer.start();
      try {
        await eventually(() => {
          assert.equal(server.openSockets(), 1);
        });
        clock.advance(2499);
        assert.equal(clock.pendingTimers(), 1, "the stall watchdog has not fired yet");
        clock.advance(1);
        await eventually(() => {
          assert.equal(errors.length, 1);
        });
        assert.equal(errors[0]?.kind, "Unavailable");
        assert.match(errors[0].message, /list of secrets stalled: no data for 2500 ms/);
        await eventually(() => {
          assert.equal(server.openSockets(), 0, "the stalled connection is closed");
        });
        assert.equal(clock.pendingTimers(), 1, "a retry is scheduled");
      } finally {
        await informer.stop();
        await server.close();
      }
    },
  );

  it("stop() aborts the request in flight and clears every timer", { timeout: testTimeoutMs }, async () => {
    const server = await tcpServer(() => undefined);
    const { informer, clock, errors } = newInformer(server.port);
    informer.start();
    try {
      await eventually(() => {
        assert.equal(server.openSockets(), 1);
      });
      await informer.stop();
      assert.equal(clock.pendingTimers(), 0);
      await eventually(() => {
        assert.equal(server.openSockets(), 0);
      });
      assert.deepEqual(errors, [], "stopping is not reported as an error");
    } finally {
      await server.close();
    }
  });

  it(
    "rejects waitForSync when its signal aborts, and when the informer stops before syncing",
    { timeout: testTimeoutMs },
    async () => {
      const server = await tcpServer(() => undefined);
      const { informer } = newInformer(server.port);
      informer.start();
      try {
        const controller = new AbortController();
        const aborted = informer.waitForSync(controller.signal);
        controller.abort(new Error("gave up waiting"));
        await assert.rejects(aborted, /gave up waiting/);
        const pending = informer.waitForSync();
        await informer.stop();
        await assert.rejects(pending, /stopped before its first list/);
        await assert.rejects(informer.waitForSync(), /stopped before its first list/);
      } finally {
        await informer.stop();
        await server.close();
      }
    },
  );

  for (const { name, list, kind, apiVersion } of [
    {
      name: "a built-in kind, which the server writes kind first",
      list: '{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"a","annotations":{"note":"é } ]"}}},{"metadata":{"name":"b"}}]}',
      kind: "Secret",
      apiVersion: "v1",
    },
    {
      name: "a custom resource, which the server writes with sorted keys",
      list: '{"apiVersion":"example.com/v1","items":[{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"a","annotations":{"note":"é } ]"}}},{"apiVersion":"example.com/v1","kind":"Thing","metadata":{"name":"b"}}],"kind":"ThingList","metadata":{"resourceVersion":"5"}}',
      kind: "Thing",
      apiVersion: "example.com/v1",
    },
  ]) {
    // A page of the usual size is parsed whole; a larger one, item by item as it arrives.
    const large = JSON.parse(list) as { items: { metadata: { annotations?: Record<string, string> } }[] };
    const b = large.items[1];
    if (b !== undefined) b.metadata.annotations = { pad: "x".repeat(wholeListBytes) };
    for (const { size, body, chunk } of [
      { size: "a page, parsed whole,", body: Buffer.from(list), chunk: 7 },
      {
        size: "a list larger than a page, split item by item,",
        body: Buffer.from(JSON.stringify(large)),
        chunk: 4096,
      },
    ]) {
      it(`caches ${size} with each item's kind first, for ${name}`, { timeout: testTimeoutMs }, async () => {
        const server = createHttpServer((req, res) => {
          if (new URL(req.url ?? "", "http://x").searchParams.has("watch")) return;
          res.writeHead(200, { "content-type": "application/json" });
          const write = (at: number): void => {
            if (at >= body.length) {
              res.end();
              return;
            }
            res.write(body.subarray(at, at + chunk), () => {
              write(at + chunk);
            });
          };
          write(0);
        });
        const kubeConfig = kubeConfigFor(await listenOnLoopback(server), "http");
        const informer = new Informer<KubernetesObject>({
          name: "things",
          kubeConfig,
          path: "/x",
          clock: new ManualClock(),
        });
        informer.start();
        try {
          await informer.waitForSync(AbortSignal.timeout(5_000));
          const a = informer.get("a");
          assert.deepEqual(a, { kind, apiVersion, metadata: { name: "a", annotations: { note: "é } ]" } } });
          assert.deepEqual(Object.keys(a), ["kind", "apiVersion", "metadata"]);
          assert.equal(informer.get("b")?.kind, kind);
        } finally {
          await informer.stop();
          server.closeAllConnections();
          await new Promise<void>((resolve) => {
            server.close(() => {
              resolve();
            });
          });
        }
      });
    }
  }

  it("refuses options that would make it spin or never page", { timeout: testTimeoutMs }, () => {
    const kubeConfig = kubeConfigFor(1);
    const base = { name: "secrets", kubeConfig, path: "/api/v1/secrets" };
    assert.throws(() => new Informer({ ...base, pageSize: 0 }), RangeError);
    assert.throws(() => new Informer({ ...base, watchTimeoutSeconds: 0.5 }), RangeError);
    assert.throws(() => new Informer({ ...base, backoff: { baseMs: 0, maxMs: 10 } }), RangeError);
    assert.throws(() => new Informer({ ...base, path: "api/v1/secrets" }), RangeError);
  });

  it(
    "resets its backoff after a successful list, and re-watches after an error without listing again",
    { timeout: testTimeoutMs },
    async () => {
      const requests: string[] = [];
      let answer = (_req: IncomingMessage, res: ServerResponse): void => {
        res.statusCode = 500;
        res.end('{"kind":"Status","code":500,"message":"etcd unavailable"}');
      };
      const server = createHttpServer((req, res) => {
        requests.push(new URL(req.url ?? "", "http://x").searchParams.has("watch") ? "watch" : "list");
        answer(req, res);
      });
      const kubeConfig = kubeConfigFor(await listenOnLoopback(server), "http");
      const clock = new ManualClock();
      const errors: KubeError[] = [];
      const informer = new Informer<KubernetesObject>({
        name: "secrets",
        kubeConfig,
        path: "/api/v1/secrets",
        clock,
        backoff: { baseMs: 1000, maxMs: 30_000 },
        hooks: { onError: (err) => errors.push(err) },
      });
      informer.start();
      try {
        for (const [attempt, delay] of [1000, 2000, 4000].entries()) {
          await eventually(() => {
            assert.equal(errors.length, attempt + 1);
            assert.equal(clock.pendingTimers(), 1, "only the backoff timer");
          });
          clock.advance(delay);
        }
        answer = (req, res) => {
          if (requests.at(-1) === "list") {
            res.end('{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":[]}');
            return;
          }
          // A watch whose connection drops at once: no clean close.
          res.writeHead(200, { "content-type": "application/json" });
          res.flushHeaders();
          req.socket.destroy();
        };
        await informer.waitForSync(AbortSignal.timeout(5_000));
        await eventually(() => {
          assert.equal(errors.length, 4);
          assert.equal(clock.pendingTimers(), 1, "the backoff before watching again");
        });
        clock.advance(999);
        assert.equal(clock.pendingTimers(), 1, "waits the base delay, not the grown one");
        clock.advance(1);
        await eventually(() => {
          assert.deepEqual(requests, ["list", "list", "list", "list", "watch", "watch"]);
        });
      } finally {
        await informer.stop();
        server.closeAllConnections();
        await new Promise<void>((resolve) => {
          server.close(() => {
            resolve();
          });
        });
      }
    },
  );
});
