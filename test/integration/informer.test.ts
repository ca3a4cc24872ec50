import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import type { Socket } from "node:net";
import { after, afterEach, before, describe, it } from "node:test";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import type { KubernetesObject } from "@kubernetes/client-node";

import { ManualClock } from "../../src/clock.ts";
import type { KubeError } from "../../src/kube/errors.ts";
import { Informer } from "../../src/kube/informer/informer.ts";
import type { InformerOptions, WatchRestartReason } from "../../src/kube/informer/informer.ts";
import type { ClusterConnection } from "../../src/kube/kubeconfig/cluster-access.ts";
import { startControlPlane } from "../harness/controlplane.ts";
import type { ControlPlane } from "../harness/controlplane.ts";
import { eventually } from "../harness/wait.ts";

/** A Secret as the informer caches it: the wire JSON, timestamps as strings. */
type SecretJson = KubernetesObject & { type?: string; data?: Record<string, string> };

const managedBy = "app.kubernetes.io/managed-by";
/** Bounds every wait for a first list, so a broken informer fails the test instead of hanging it. */
const syncTimeoutMs = 20_000;
/** Bounds each test, including the informer's stop(). */
const testTimeoutMs = 120_000;

/**
 * A loopback TCP proxy to the API server that can stop forwarding bytes, both ways, without
 * closing any socket: a network path gone dark. TLS passes through untouched.
 */
interface DarkeningProxy {
  /** A copy of `kubeConfig` that reaches the API server through this proxy. */
  kubeConfig: KubeConfig;
  /** Open connections and connections made while dark go silent; nothing is closed. */
  darken(): void;
  /** New connections flow again; the ones that went dark stay dark until their client hangs up. */
  restore(): void;
  /** Resets every open connection (RST), as a crashed load balancer or NAT would. */
  cut(): void;
  connectionsOpened(): number;
  openConnections(): number;
  close(): Promise<void>;
}

async function startDarkeningProxy(plane: ControlPlane): Promise<DarkeningProxy> {
  const target = new URL(plane.server);
  const links = new Set<{ client: Socket; upstream: Socket; dark: boolean }>();
  let dark = false;
  let opened = 0;
  const server = createServer((client) => {
    opened += 1;
    const upstream = connect(Number(target.port), target.hostname);
    const link = { client, upstream, dark };
    links.add(link);
    const relay = (from: Socket, to: Socket): void => {
      from.on("data", (chunk: Buffer) => {
        if (!link.dark) to.write(chunk);
      });
      from.on("end", () => {
        if (!link.dark) to.end();
      });
    };
    relay(client, upstream);
    relay(upstream, client);
    const drop = (): void => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    // The informer hanging up always closes the far side; the server hanging up reaches the
    // informer only while the path is not dark.
    client.on("close", drop);
    client.on("error", drop);
    upstream.on("close", () => {
      if (!link.dark) drop();
    });
    upstream.on("error", () => {
      if (!link.dark) drop();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy bound no port");

  const source = plane.kubeConfig;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: source.clusters.map((cluster) => ({
      ...cluster,
      server: `https://127.0.0.1:${address.port}`,
    })),
    users: source.users,
    contexts: source.contexts,
    currentContext: source.currentContext,
  });

  return {
    kubeConfig,
    darken: () => {
      dark = true;
      for (const link of links) link.dark = true;
    },
    restore: () => {
      dark = false;
    },
    cut: () => {
      for (const link of links) {
        link.client.resetAndDestroy();
        link.upstream.destroy();
      }
    },
    connectionsOpened: () => opened,
    openConnections: () => links.size,
    close: async () => {
      for (const { client, upstream } of links) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}

interface AuditedRequest {
  verb: string;
  query: URLSearchParams;
  code: number | undefined;
}

/**
 * The list and watch requests of a collection path in the audit log, in order: lists once they
 * completed, watches once they started. A test's own probes, which ask for an exact
 * resourceVersion, are left out; so are requests with no query at all, unless `bare` (a test that
 * lists the collection itself makes those).
 */
async function requestsOf(auditLogPath: string, path: string, bare = false): Promise<AuditedRequest[]> {
  return (await readFile(auditLogPath, "utf8"))
    .split("\n")
    .filter((line) => line !== "")
    .map(
      (line) =>
        JSON.parse(line) as {
          stage?: string;
          verb?: string;
          requestURI?: string;
          responseStatus?: { code?: number };
        },
    )
    .filter(
      (e) =>
        e.stage === (e.verb === "watch" ? "ResponseStarted" : "ResponseComplete") &&
        ((bare && e.requestURI === path) || e.requestURI?.startsWith(`${path}?`) === true),
    )
    .map((e) => ({
      verb: e.verb ?? "",
      query: new URL(e.requestURI ?? "", "https://audit.invalid").searchParams,
      code: e.responseStatus?.code,
    }))
    .filter((r) => r.query.get("resourceVersionMatch") !== "Exact");
}

/**
 * A connection whose `gateAt`-th request (1-based) waits until `release` is called, so a test can
 * change the cluster between two requests of one paged list.
 */
function gatedConnection(
  inner: ClusterConnection,
  gateAt: number,
): { connection: ClusterConnection; reached: Promise<void>; release: () => void } {
  let calls = 0;
  let reach = (): void => undefined;
  let release = (): void => undefined;
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    connection: {
      getCurrentCluster: () => inner.getCurrentCluster(),
      applyToHTTPSOptions: async (options) => {
        calls += 1;
        if (calls === gateAt) {
          reach();
          await released;
        }
        await inner.applyToHTTPSOptions(options);
      },
    },
    reached,
    release,
  };
}

interface Observed {
  informer: Informer<SecretJson>;
  /** Handler calls in order, as "add:name", "update:name", "delete:name". */
  events: string[];
  errors: KubeError[];
  restarts: { reason: WatchRestartReason; at: number }[];
}

describe("Informer against a real API server", () => {
  let plane: ControlPlane;
  let core: CoreV1Api;
  const informers: Informer<SecretJson>[] = [];
  const proxies: DarkeningProxy[] = [];

  before(async () => {
    plane = await startControlPlane({ audit: true });
    core = plane.kubeConfig.makeApiClient(CoreV1Api);
  });

  afterEach(
    async () => {
      await Promise.all(informers.splice(0).map((informer) => informer.stop()));
      await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
    },
    { timeout: testTimeoutMs },
  );

  after(
    async () => {
      await plane.stop();
    },
    { timeout: testTimeoutMs },
  );

  function observe(options: Partial<InformerOptions<SecretJson>> & { path: string }): Observed {
    const events: string[] = [];
    const errors: KubeError[] = [];
    const restarts: Observed["restarts"] = [];
    const informer = new Informer<SecretJson>({
      name: "secrets",
      kubeConfig: plane.kubeConfig,
      hooks: {
        onError: (err) => errors.push(err),
        onWatchRestart: (reason) => restarts.push({ reason, at: Date.now() }),
      },
      ...options,
    });
    informer.addHandlers({
      onAdd: (obj) => events.push(`add:${obj.metadata?.name ?? ""}`),
      onUpdate: (obj) => events.push(`update:${obj.metadata?.name ?? ""}`),
      onDelete: (obj) => events.push(`delete:${obj.metadata?.name ?? ""}`),
    });
    informers.push(informer);
    informer.start();
    return { informer, events, errors, restarts };
  }

  async function proxy(): Promise<DarkeningProxy> {
    const started = await startDarkeningProxy(plane);
    proxies.push(started);
    return started;
  }

  async function createNamespace(name: string): Promise<void> {
    await core.createNamespace({ body: { metadata: { name } } });
  }

  async function createSecret(
    namespace: string,
    name: string,
    labels?: Record<string, string>,
  ): Promise<void> {
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name, labels }, stringData: { v: "1" } },
    });
  }

  function present(informer: Informer<SecretJson>, name: string, namespace: string): SecretJson {
    const obj = informer.get(name, namespace);
    assert.ok(obj, `${namespace}/${name} is in the store`);
    return obj;
  }

  it(
    "lists every existing object by a consistent read in pages of pageSize",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("paging");
      const names = Array.from({ length: 30 }, (_, i) => `s${String(i).padStart(2, "0")}`);
      for (const name of names) await createSecret("paging", name);

      const { informer, events } = observe({ path: "/api/v1/namespaces/paging/secrets", pageSize: 7 });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));

      assert.equal(informer.size(), 30);
      assert.deepEqual(
        informer
          .list("paging")
          .map((s) => s.metadata?.name)
          .sort(),
        names,
      );
      assert.deepEqual(
        [...events].sort(),
        names.map((name) => `add:${name}`),
      );
      const listCalls = await eventually(
        async () => {
          const calls = (await readFile(plane.auditLogPath, "utf8"))
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => JSON.parse(line) as { verb?: string; requestURI?: string })
            .filter(
              (e) => e.verb === "list" && e.requestURI?.startsWith("/api/v1/namespaces/paging/secrets?"),
            )
            .map((e) => new URL(e.requestURI ?? "", "https://audit.invalid").searchParams);
          assert.ok(calls.length >= 1, `${calls.length} list requests in the audit log`);
          return calls;
        },
        { message: "list requests in the audit log" },
      );
      // A consistent read (no resourceVersion), in pages of pageSize.
      assert.deepEqual(
        listCalls
          .filter((query) => !query.has("continue"))
          .map((query) => [query.get("resourceVersion"), query.get("limit")]),
        [[null, "7"]],
      );
      assert.equal(listCalls.filter((query) => query.has("continue")).length, 4, "30 objects in pages of 7");
    },
  );

  it(
    "tells handlers added after sync about every object already cached",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("late-handlers");
      for (const name of ["a", "b", "c"]) await createSecret("late-handlers", name);
      const { informer } = observe({ path: "/api/v1/namespaces/late-handlers/secrets" });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
      const late: string[] = [];
      informer.addHandlers({ onAdd: (obj) => late.push(obj.metadata?.name ?? "") });
      assert.deepEqual(late.sort(), ["a", "b", "c"]);
    },
  );

  it(
    "delivers ADDED, MODIFIED and DELETED to the handlers and the store",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("events");
      const { informer, events } = observe({ path: "/api/v1/namespaces/events/secrets" });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
      assert.equal(informer.size(), 0);

      await createSecret("events", "s1");
      await eventually(() => present(informer, "s1", "events"));
      const created = present(informer, "s1", "events");

      await core.replaceNamespacedSecret({
        namespace: "events",
        name: "s1",
        body: { metadata: { name: "s1" }, stringData: { v: "2" } },
      });
      await eventually(() => {
        assert.equal(present(informer, "s1", "events").data?.v, Buffer.from("2").toString("base64"));
      });
      assert.notEqual(
        present(informer, "s1", "events").metadata?.resourceVersion,
        created.metadata?.resourceVersion,
      );

      await core.deleteNamespacedSecret({ namespace: "events", name: "s1" });
      await eventually(() => {
        assert.equal(informer.get("s1", "events"), undefined);
      });
      assert.deepEqual(events, ["add:s1", "update:s1", "delete:s1"]);
      assert.equal(informer.size(), 0);
    },
  );

  it("caches cluster-scoped objects under the empty namespace", { timeout: testTimeoutMs }, async () => {
    await createNamespace("cluster-scoped-probe");
    const { informer } = observe({ path: "/api/v1/namespaces" });
    await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
    const names = informer.list("").map((ns) => ns.metadata?.name);
    assert.ok(names.includes("cluster-scoped-probe"));
    assert.ok(names.includes("kube-system"));
    assert.equal(informer.get("kube-system")?.kind, "Namespace");
  });

  it("lists and watches metadata alone with metadataOnly", { timeout: testTimeoutMs }, async () => {
    await createNamespace("metadata-only");
    await createSecret("metadata-only", "listed");
    const seen: SecretJson[] = [];
    const { informer } = observe({
      path: "/api/v1/namespaces/metadata-only/secrets",
      metadataOnly: true,
      transform: (raw) => {
        seen.push(structuredClone(raw));
        return raw;
      },
    });
    await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
    await createSecret("metadata-only", "watched");
    await eventually(() => present(informer, "watched", "metadata-only"));
    assert.deepEqual(
      seen.map((s) => `${s.kind ?? ""}:${s.metadata?.name ?? ""}`),
      ["PartialObjectMetadata:listed", "PartialObjectMetadata:watched"],
    );
    for (const object of seen) {
      assert.equal(object.apiVersion, "meta.k8s.io/v1");
      assert.equal(object.type, undefined, "no type");
      assert.equal(object.data, undefined, "and no data");
      assert.ok(object.metadata?.resourceVersion, "but the metadata, resourceVersion included");
      assert.ok(
        (object.metadata.managedFields ?? []).length > 0,
        "and the managedFields, before the transform drops them",
      );
    }
  });

  it(
    "syncs on an empty list of metadata, which the server sends with null items",
    {
      timeout: testTimeoutMs,
    },
    async () => {
      await createNamespace("metadata-only-empty");
      const { informer, errors } = observe({
        path: "/api/v1/namespaces/metadata-only-empty/secrets",
        metadataOnly: true,
      });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
      assert.deepEqual(informer.list(), []);
      assert.deepEqual(errors, []);
    },
  );

  it("never caches a Secret its label selector excludes", { timeout: testTimeoutMs }, async () => {
    await createNamespace("selected");
    await createSecret("selected", "unmanaged");
    await createSecret("selected", "managed", { [managedBy]: "ecr-creds-refresher" });
    const { informer, events } = observe({
      path: "/api/v1/namespaces/selected/secrets",
      labelSelector: `${managedBy}=ecr-creds-refresher`,
    });
    await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
    assert.deepEqual(
      informer.list().map((s) => s.metadata?.name),
      ["managed"],
    );

    // Watch events arrive in resourceVersion order: once managed-2 is seen, unmanaged-2 was skipped.
    await createSecret("selected", "unmanaged-2");
    await createSecret("selected", "managed-2", { [managedBy]: "ecr-creds-refresher" });
    await eventually(() => present(informer, "managed-2", "selected"));

    // A Secret that loses the label leaves the selection, so it leaves the store.
    await core.patchNamespacedSecret({
      namespace: "selected",
      name: "managed",
      body: [{ op: "remove", path: `/metadata/labels/${managedBy.replace("/", "~1")}` }],
    });
    await eventually(() => {
      assert.equal(informer.get("managed", "selected"), undefined);
    });
    assert.deepEqual(
      informer.list().map((s) => s.metadata?.name),
      ["managed-2"],
    );
    assert.deepEqual(events, ["add:managed", "add:managed-2", "delete:managed"]);
  });

  it(
    "gives objects the same plain-JSON shape from list and from watch, without managedFields",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("shape");
      await createSecret("shape", "listed");
      const watching = observe({ path: "/api/v1/namespaces/shape/secrets" }).informer;
      await watching.waitForSync(AbortSignal.timeout(syncTimeoutMs));
      await createSecret("shape", "watched");
      await eventually(() => present(watching, "watched", "shape"));
      const listing = observe({ path: "/api/v1/namespaces/shape/secrets" }).informer;
      await listing.waitForSync(AbortSignal.timeout(syncTimeoutMs));

      const fromList = present(watching, "listed", "shape");
      const fromWatch = present(watching, "watched", "shape");
      assert.deepEqual(
        fromWatch,
        present(listing, "watched", "shape"),
        "one object, once watched and once listed",
      );
      for (const obj of [fromList, fromWatch]) {
        assert.equal(Object.getPrototypeOf(obj), Object.prototype, "a plain object, not a model class");
        assert.equal(typeof (obj.metadata?.creationTimestamp as unknown), "string");
        assert.equal(obj.kind, "Secret");
        assert.equal(obj.apiVersion, "v1");
        assert.equal(obj.metadata?.managedFields, undefined);
      }
      // The server does record managedFields, so the check above is not vacuous.
      const raw = await core.readNamespacedSecret({ namespace: "shape", name: "watched" });
      assert.ok((raw.metadata?.managedFields?.length ?? 0) > 0);
    },
  );

  it(
    "keeps delivering events after a handler throws, and reports the failure",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("throwing");
      const { informer, errors } = observe({ path: "/api/v1/namespaces/throwing/secrets" });
      const added: string[] = [];
      informer.addHandlers({
        onAdd: (obj) => {
          if (obj.metadata?.name === "poison") throw new Error("handler bug");
          added.push(obj.metadata?.name ?? "");
        },
      });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
      await createSecret("throwing", "poison");
      await createSecret("throwing", "after-poison");
      await eventually(() => {
        assert.deepEqual(added, ["after-poison"]);
      });
      assert.ok(informer.get("poison", "throwing"), "the store was updated before the handler ran");
      assert.equal(errors.length, 1);
      assert.match(errors[0]?.message ?? "", /add handler threw Error: handler bug/);
    },
  );

  it(
    "lists by a consistent read, then resumes from the last resourceVersion after a reset, without listing again",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("resume");
      await createSecret("resume", "steady");
      const path = await proxy();
      const collection = "/api/v1/namespaces/resume/secrets";
      const { informer, events, restarts } = observe({ path: collection, kubeConfig: path.kubeConfig });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
      await eventually(async () => {
        assert.ok((await requestsOf(plane.auditLogPath, collection)).some((r) => r.verb === "list"));
      });
      const [list, ...more] = (await requestsOf(plane.auditLogPath, collection)).filter(
        (r) => r.verb === "list",
      );
      assert.equal(more.length, 0);
      assert.equal(list?.query.get("resourceVersion"), null, "the first list is a consistent read");
      assert.equal(list.query.get("limit"), "500");
      await createSecret("resume", "seen-before-cut");
      await eventually(() => present(informer, "seen-before-cut", "resume"));
      const lastSeen = present(informer, "seen-before-cut", "resume").metadata?.resourceVersion ?? "";

      const watchesBefore = await eventually(async () => {
        const watches = (await requestsOf(plane.auditLogPath, collection)).filter((r) => r.verb === "watch");
        assert.ok(watches.length > 0, "the first watch is open");
        return watches.length;
      });
      path.cut();
      await createSecret("resume", "made-after-cut");
      await eventually(() => present(informer, "made-after-cut", "resume"), { timeoutMs: 20_000 });

      assert.ok(
        restarts.some((r) => r.reason === "error"),
        `restarts: ${JSON.stringify(restarts)}`,
      );
      assert.deepEqual(events, ["add:steady", "add:seen-before-cut", "add:made-after-cut"]);
      const resumed = (await requestsOf(plane.auditLogPath, collection))
        .filter((r) => r.verb === "watch")
        .slice(watchesBefore);
      assert.ok(resumed.length > 0, "a watch after the reset");
      for (const watch of resumed) {
        // The last version seen: the object's, or a later bookmark's.
        assert.ok(Number(watch.query.get("resourceVersion")) >= Number(lastSeen), "resumed, not restarted");
      }
      const lists = (await requestsOf(plane.auditLogPath, collection)).filter((r) => r.verb === "list");
      assert.equal(lists.length, 1, "no list after the reset");
    },
  );

  it(
    "re-watches when the server ends a watch, and restarts a watch gone silent within timeout plus grace",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("stall");
      const path = await proxy();
      const { informer, restarts } = observe({
        path: "/api/v1/namespaces/stall/secrets",
        kubeConfig: path.kubeConfig,
        watchTimeoutSeconds: 2,
        stallGraceMs: 1000,
      });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));

      // Healthy watches end after 2-3 s and are replaced at once, never taken for stalls.
      const connections = path.connectionsOpened();
      await eventually(
        () => {
          assert.ok(path.connectionsOpened() >= connections + 2);
        },
        { timeoutMs: 10_000 },
      );
      assert.equal(restarts.length, 0, `unexpected restarts: ${JSON.stringify(restarts)}`);

      const darkAt = Date.now();
      path.darken();
      await createSecret("stall", "made-while-dark");
      const stall = await eventually(
        () => {
          const found = restarts.find((r) => r.reason === "stalled");
          assert.ok(found, "a stalled watch was reported");
          return found;
        },
        { timeoutMs: 10_000 },
      );
      // The longest jittered timeout is 3 s, plus 1 s grace; 1 s of slack for a busy machine.
      const limitMs = 3000 + 1000;
      assert.ok(stall.at - darkAt <= limitMs + 1000, `stall detected after ${stall.at - darkAt} ms`);

      path.restore();
      await eventually(() => present(informer, "made-while-dark", "stall"), { timeoutMs: 15_000 });
    },
  );

  it(
    "stops promptly with a watch open, leaving no connection behind",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("stopping");
      const path = await proxy();
      // A clock that never moves: only stop() can end the watch, and leftover timers stay countable.
      const clock = new ManualClock();
      const { informer } = observe({
        path: "/api/v1/namespaces/stopping/secrets",
        kubeConfig: path.kubeConfig,
        clock,
      });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
      await eventually(() => {
        assert.equal(path.openConnections(), 1);
      });
      const stopping = Date.now();
      await informer.stop();
      assert.ok(Date.now() - stopping < 1000, `stop took ${Date.now() - stopping} ms`);
      assert.equal(clock.pendingTimers(), 0, "no relist, stall or backoff timer left");
      await eventually(() => {
        assert.equal(path.openConnections(), 0);
      });
    },
  );

  it(
    "recovers after the API server restarts and catches up on changes made meanwhile",
    { timeout: testTimeoutMs },
    async () => {
      await createNamespace("restart");
      await createSecret("restart", "kept");
      await createSecret("restart", "doomed");
      const { informer, events, errors, restarts } = observe({ path: "/api/v1/namespaces/restart/secrets" });
      await informer.waitForSync(AbortSignal.timeout(syncTimeoutMs));
      events.length = 0;

      await plane.restartApiServer();
      await createSecret("restart", "born-after-restart");
      await core.deleteNamespacedSecret({ namespace: "restart", name: "doomed" });
      const updated = await core.replaceNamespacedSecret({
        namespace: "restart",
        name: "kept",
        body: { metadata: { name: "kept" }, stringData: { v: "2" } },
      });

      await eventually(
        () => {
          present(informer, "born-after-restart", "restart");
          assert.equal(informer.get("doomed", "restart"), undefined);
          assert.equal(
            present(informer, "kept", "restart").metadata?.resourceVersion,
            updated.metadata?.resourceVersion,
          );
        },
        { timeoutMs: 60_000, message: "the informer caught up after the restart" },
      );
      assert.deepEqual([...events].sort(), ["add:born-after-restart", "delete:doomed", "update:kept"]);
      assert.ok(
        restarts.some((r) => r.reason === "error"),
        "the broken watch was reported",
      );
      assert.ok(
        errors.every((err) => err.kind === "Unavailable"),
        errors.map((e) => e.message).join("; "),
      );
    },
  );
});

describe("Informer whose resourceVersion was compacted away", () => {
  let plane: ControlPlane;
  let core: CoreV1Api;
  let path: DarkeningProxy | undefined;
  const started: Informer<SecretJson>[] = [];

  before(async () => {
    // Without the watch cache, watches are served by etcd, which answers 410 Gone for a revision
    // that compaction removed; compacting every second makes that quick.
    plane = await startControlPlane({
      audit: true,
      apiServerArgs: ["--watch-cache=false", "--etcd-compaction-interval=1s"],
    });
    core = plane.kubeConfig.makeApiClient(CoreV1Api);
  });

  after(
    async () => {
      await Promise.all(started.map((informer) => informer.stop()));
      await path?.close();
      await plane.stop();
    },
    { timeout: testTimeoutMs },
  );

  async function isCompacted(namespace: string, resourceVersion: string): Promise<void> {
    try {
      await core.listNamespacedSecret({ namespace, resourceVersion, resourceVersionMatch: "Exact" });
    } catch (err) {
      if ((err as { code?: number }).code === 410) return;
      throw err;
    }
    throw new Error(`resourceVersion ${resourceVersion} is still available`);
  }

  it(
    "relists after 410 Gone and catches up on changes no watch can deliver any more",
    { timeout: testTimeoutMs },
    async () => {
      await core.createNamespace({ body: { metadata: { name: "gone" } } });
      await core.createNamespacedSecret({ namespace: "gone", body: { metadata: { name: "old" } } });
      path = await startDarkeningProxy(plane);
      const events: string[] = [];
      const restarts: { reason: WatchRestartReason; at: number }[] = [];
      const cache = new Informer<SecretJson>({
        name: "secrets",
        kubeConfig: path.kubeConfig,
        path: "/api/v1/namespaces/gone/secrets",
        watchTimeoutSeconds: 2,
        stallGraceMs: 1000,
        hooks: { onWatchRestart: (reason) => restarts.push({ reason, at: Date.now() }) },
      });
      started.push(cache);
      cache.addHandlers({
        onAdd: (obj) => events.push(`add:${obj.metadata?.name ?? ""}`),
        onDelete: (obj) => events.push(`delete:${obj.metadata?.name ?? ""}`),
      });
      cache.start();
      await cache.waitForSync(AbortSignal.timeout(syncTimeoutMs));

      path.darken();
      await core.createNamespacedSecret({ namespace: "gone", body: { metadata: { name: "missed" } } });
      await core.deleteNamespacedSecret({ namespace: "gone", name: "old" });
      const afterChanges = await core.listNamespacedSecret({ namespace: "gone" });
      const resourceVersion = afterChanges.metadata?.resourceVersion ?? "";
      await eventually(() => isCompacted("gone", resourceVersion), { timeoutMs: 20_000 });

      const restoredAt = Date.now();
      path.restore();
      await eventually(
        () => {
          assert.ok(cache.get("missed", "gone"));
          assert.equal(cache.get("old", "gone"), undefined);
        },
        { timeoutMs: 20_000 },
      );
      assert.ok(
        restarts.some((r) => r.reason === "expired" && r.at >= restoredAt),
        `restarts: ${JSON.stringify(restarts)}`,
      );
      assert.deepEqual(events, ["add:old", "add:missed", "delete:old"]);
      const lists = (await requestsOf(plane.auditLogPath, "/api/v1/namespaces/gone/secrets")).filter(
        (r) => r.verb === "list",
      );
      const relist = lists.at(-1)?.query;
      assert.equal(lists.length, 2, "one list at start, one after the 410");
      assert.match(
        relist?.get("resourceVersion") ?? "",
        /^[1-9]\d*$/,
        "the relist asks for the last version seen",
      );
      assert.equal(relist?.has("limit"), false, "unpaged, so a watch cache could answer it");
    },
  );

  it(
    "lists in full when a continue token expires between pages, instead of starting over",
    { timeout: testTimeoutMs },
    async () => {
      await core.createNamespace({ body: { metadata: { name: "paged" } } });
      for (let i = 0; i < 10; i++) {
        await core.createNamespacedSecret({ namespace: "paged", body: { metadata: { name: `s${i}` } } });
      }
      const gate = gatedConnection(plane.kubeConfig, 2);
      const collection = "/api/v1/namespaces/paged/secrets";
      const errors: KubeError[] = [];
      const cache = new Informer<SecretJson>({
        name: "secrets",
        kubeConfig: gate.connection,
        path: collection,
        pageSize: 3,
        hooks: { onError: (err) => errors.push(err) },
      });
      started.push(cache);
      cache.start();
      await gate.reached;
      // The first page's version falls out of etcd's history before the second page is asked for.
      const late = await core.createNamespacedSecret({
        namespace: "paged",
        body: { metadata: { name: "late" } },
      });
      await core.createNamespacedSecret({ namespace: "paged", body: { metadata: { name: "later" } } });
      await eventually(() => isCompacted("paged", late.metadata?.resourceVersion ?? ""), {
        timeoutMs: 20_000,
      });
      gate.release();
      await cache.waitForSync(AbortSignal.timeout(syncTimeoutMs));

      assert.equal(cache.size(), 12);
      assert.deepEqual(errors, [], "the fallback is no failure");
      // The audit log is written once a response is complete: the last list may not be in it yet.
      const lists = await eventually(async () => {
        const found = (await requestsOf(plane.auditLogPath, collection, true)).filter(
          (r) => r.verb === "list",
        );
        assert.ok(found.length >= 3, `${found.length} lists in the audit log`);
        return found;
      });
      assert.deepEqual(
        lists.map((r) => ({
          code: r.code,
          limit: r.query.get("limit"),
          continued: r.query.has("continue"),
          resourceVersion: r.query.get("resourceVersion"),
        })),
        [
          { code: 200, limit: "3", continued: false, resourceVersion: null },
          { code: 410, limit: "3", continued: true, resourceVersion: null },
          { code: 200, limit: null, continued: false, resourceVersion: null },
        ],
      );
    },
  );
});
