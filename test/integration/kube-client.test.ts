// The operator's own client against a real API server: exec credential plugins run as real child
// processes (a revoked token refused with 401 and replaced, expiry honoured, the cluster delivered
// with provideClusterInfo, a client certificate from a plugin), and requests and a watch through a
// loopback HTTP CONNECT proxy, named by proxy-url and by HTTPS_PROXY.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CoreV1Api } from "@kubernetes/client-node";
import type { KubernetesObject } from "@kubernetes/client-node";
import { stringify } from "yaml";

import { ManualClock } from "../../src/clock.ts";
import { KubeError } from "../../src/kube/errors.ts";
import { Informer } from "../../src/kube/informer/informer.ts";
import type { ClusterAccess } from "../../src/kube/kubeconfig/cluster-access.ts";
import { loadKubeConfig } from "../../src/kube/kubeconfig/load.ts";
import { KubeClient } from "../../src/kube/rest.ts";
import { issueCertificate } from "../harness/certs.ts";
import { startConnectProxy, type ConnectProxy } from "../harness/connect-proxy.ts";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.ts";
import { eventually } from "../harness/wait.ts";

const testTimeoutMs = 60_000;

/**
 * Prints an ExecCredential: the n-th run's token is line n of TOKENS_FILE (the last line after
 * that), with EXPIRES as its expiry; CERT_FILE and KEY_FILE, when set, give a client certificate.
 * Each run appends its KUBERNETES_EXEC_INFO to RUNS_FILE. With NEEDS_CLUSTER it fails unless the
 * cluster was provided, as plugins like Pinniped's do.
 */
const plugin = `
import { appendFileSync, readFileSync } from "node:fs";
const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO);
appendFileSync(process.env.RUNS_FILE, JSON.stringify(info) + "\\n");
if (process.env.NEEDS_CLUSTER && info.spec.cluster === undefined) {
  process.stderr.write("no cluster information: set provideClusterInfo\\n");
  process.exit(1);
}
const runs = readFileSync(process.env.RUNS_FILE, "utf8").trim().split("\\n").length;
const status = {};
if (process.env.TOKENS_FILE) {
  const tokens = readFileSync(process.env.TOKENS_FILE, "utf8").trim().split("\\n");
  status.token = tokens[Math.min(runs, tokens.length) - 1];
}
if (process.env.EXPIRES) status.expirationTimestamp = process.env.EXPIRES;
if (process.env.CERT_FILE) {
  status.clientCertificateData = readFileSync(process.env.CERT_FILE, "utf8");
  status.clientKeyData = readFileSync(process.env.KEY_FILE, "utf8");
}
process.stdout.write(JSON.stringify({ apiVersion: info.apiVersion, kind: "ExecCredential", status }));
`;

describe("the operator's client against a real API server", () => {
  let plane: ControlPlane;
  let core: CoreV1Api;
  let dir: string;
  const opened: ClusterAccess[] = [];
  const proxies: ConnectProxy[] = [];

  before(async () => {
    plane = await startControlPlane();
    core = plane.kubeConfig.makeApiClient(CoreV1Api);
    dir = await mkdtemp(join(tmpdir(), "kube-client-test-"));
    await writeFile(join(dir, "plugin.mjs"), plugin);
    await core.createNamespace({ body: { metadata: { name: "exec" } } });
  });

  after(
    async () => {
      for (const access of opened) access.close();
      for (const proxy of proxies) await proxy.stop();
      await plane.stop();
      await rm(dir, { recursive: true, force: true });
    },
    { timeout: testTimeoutMs },
  );

  /** A token of a new ServiceAccount, which the API server accepts until the account is deleted. */
  async function serviceAccountToken(name: string): Promise<string> {
    await core.createNamespacedServiceAccount({ namespace: "exec", body: { metadata: { name } } });
    const request = await core.createNamespacedServiceAccountToken({
      namespace: "exec",
      name,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const token = request.status?.token;
    assert.ok(token !== undefined && token !== "");
    return token;
  }

  let caseCount = 0;

  /** A kubeconfig file for the test API server, `cluster` merged into its cluster, with one user. */
  async function writeConfig(name: string, cluster: Record<string, unknown>, user: object): Promise<string> {
    const file = join(dir, name);
    await writeFile(
      file,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        "current-context": "local",
        clusters: [
          {
            name: "local",
            cluster: {
              server: plane.server,
              "certificate-authority-data": b64(plane.ca.certPem),
              ...cluster,
            },
          },
        ],
        users: [{ name: "user", user }],
        contexts: [{ name: "local", context: { cluster: "local", user: "user" } }],
      }),
    );
    return file;
  }

  /** A kubeconfig whose user runs the plugin with `env`; the runs' KUBERNETES_EXEC_INFO come back from `runs`. */
  async function withPlugin(
    env: Record<string, string>,
    cluster: Record<string, unknown> = {},
    exec: Record<string, unknown> = {},
    clock?: ManualClock,
  ): Promise<{ access: ClusterAccess; runs: () => Promise<{ spec: Record<string, unknown> }[]> }> {
    caseCount += 1;
    const runsFile = join(dir, `runs-${caseCount}`);
    await writeFile(runsFile, "");
    const file = await writeConfig(`config-${caseCount}`, cluster, {
      exec: {
        apiVersion: "client.authentication.k8s.io/v1",
        interactiveMode: "Never",
        command: process.execPath,
        args: [join(dir, "plugin.mjs")],
        env: Object.entries({ RUNS_FILE: runsFile, ...env }).map(([name, value]) => ({ name, value })),
        ...exec,
      },
    });
    const access = loadKubeConfig({ path: file, env: { PATH: process.env.PATH } }, { clock });
    opened.push(access);
    const runs = async (): Promise<{ spec: Record<string, unknown> }[]> =>
      (await readFile(runsFile, "utf8"))
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as { spec: Record<string, unknown> });
    return { access, runs };
  }

  function b64(text: string): string {
    return Buffer.from(text).toString("base64");
  }

  async function tokensFile(name: string, tokens: readonly string[]): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `${tokens.join("\n")}\n`);
    return path;
  }

  it(
    "runs the exec plugin again after the API server refuses its token with 401",
    { timeout: testTimeoutMs },
    async () => {
      const revoked = await serviceAccountToken("revoked");
      await core.deleteNamespacedServiceAccount({ namespace: "exec", name: "revoked" });
      const good = await serviceAccountToken("good");
      const { access, runs } = await withPlugin({
        TOKENS_FILE: await tokensFile("tokens-401", [revoked, good]),
      });
      const client = new KubeClient(access);

      const revokedWhen = await eventually(async () => {
        const outcome = await client.get("/api").then(
          () => "accepted",
          (err: unknown) => (err instanceof KubeError ? err.kind : "other"),
        );
        // The deletion takes effect in the API server's ServiceAccount cache shortly after.
        assert.notEqual(outcome, "accepted", "the revoked token still works");
        return outcome;
      });
      assert.equal(revokedWhen, "Unauthorized");
      const before = (await runs()).length;
      await client.get("/api");
      await client.get("/api");
      const after = (await runs()).length;
      assert.equal(after, before + 1, "one more run after the 401, none after that");
    },
  );

  it(
    "runs the exec plugin again when its token nears its expirationTimestamp",
    { timeout: testTimeoutMs },
    async () => {
      const good = await serviceAccountToken("expiring");
      const clock = new ManualClock(Date.now());
      const expires = new Date(clock.now() + 60_000).toISOString();
      const { access, runs } = await withPlugin(
        { TOKENS_FILE: await tokensFile("tokens-expiry", [good]), EXPIRES: expires },
        {},
        {},
        clock,
      );
      const client = new KubeClient(access);

      await client.get("/api");
      clock.advance(49_000);
      await client.get("/api");
      assert.equal((await runs()).length, 1, "still valid for more than 10 s");
      clock.advance(1_000);
      await client.get("/api");
      assert.equal((await runs()).length, 2);
    },
  );

  it(
    "gives a plugin that needs it the cluster with provideClusterInfo",
    { timeout: testTimeoutMs },
    async () => {
      const good = await serviceAccountToken("cluster-info");
      const extension = { issuer: "https://issuer.example", audience: "kube-local", port: 8443 };
      const cluster = {
        "certificate-authority-data": undefined,
        "certificate-authority": plane.ca.certPath,
        "tls-server-name": "localhost",
        extensions: [{ name: "client.authentication.k8s.io/exec", extension }],
      };
      const env = { TOKENS_FILE: await tokensFile("tokens-info", [good]), NEEDS_CLUSTER: "1" };
      const without = await withPlugin(env, cluster);
      await assert.rejects(new KubeClient(without.access).get("/api"), /no cluster information/);

      const { access, runs } = await withPlugin(env, cluster, { provideClusterInfo: true });
      await new KubeClient(access).get("/api");

      const [info] = await runs();
      assert.deepEqual(info?.spec, {
        cluster: {
          server: plane.server,
          "tls-server-name": "localhost",
          "certificate-authority-data": b64(plane.ca.certPem),
          config: extension,
        },
        interactive: false,
      });
    },
  );

  it(
    "authenticates with a client certificate an exec plugin returns",
    { timeout: testTimeoutMs },
    async () => {
      const pair = await issueCertificate(plane.ca, {
        fileName: "exec-plugin-user",
        commonName: "exec-plugin-user",
        usage: "client",
      });
      const { access } = await withPlugin({ CERT_FILE: pair.certPath, KEY_FILE: pair.keyPath });

      const review = await new KubeClient(access).create<{ status?: { userInfo?: { username?: string } } }>(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
      );

      assert.equal(review.status?.userInfo?.username, "exec-plugin-user");
    },
  );

  /** An admin kubeconfig file for the test API server, with `cluster` merged into its cluster. */
  async function adminConfig(name: string, cluster: Record<string, unknown>): Promise<string> {
    const admin = await issueCertificate(plane.ca, {
      fileName: `${name}-admin`,
      commonName: "proxy-admin",
      organizations: ["system:masters"],
      usage: "client",
    });
    return writeConfig(name, cluster, {
      "client-certificate-data": b64(admin.certPem),
      "client-key-data": b64(admin.keyPem),
    });
  }

  it(
    "sends requests and a watch through the CONNECT proxy of proxy-url, with its credentials",
    { timeout: testTimeoutMs },
    async () => {
      const apiPort = Number(new URL(plane.server).port);
      const proxy = await startConnectProxy({
        upstreamPort: apiPort,
        requireAuthorization: `Basic ${b64("proxy-user:proxy-pass")}`,
      });
      proxies.push(proxy);
      const proxyUrl = proxy.url.replace("http://", "http://proxy-user:proxy-pass@");
      const access = loadKubeConfig({
        path: await adminConfig("via-proxy-url", { "proxy-url": proxyUrl }),
        env: {},
      });
      opened.push(access);

      const namespaces = new Informer<KubernetesObject>({
        name: "namespaces",
        kubeConfig: access,
        path: "/api/v1/namespaces",
      });
      namespaces.start();
      try {
        await namespaces.waitForSync(AbortSignal.timeout(20_000));
        await new KubeClient(access).create("/api/v1/namespaces", { metadata: { name: "through-proxy" } });
        await eventually(() => {
          assert.ok(namespaces.get("through-proxy"), "the watch through the proxy saw the new namespace");
        });
        assert.ok(proxy.tunnels.length >= 1);
        assert.ok(proxy.tunnels.every((t) => t.target === `127.0.0.1:${apiPort}`));
        assert.ok(
          proxy.tunnels.every((t) => t.proxyAuthorization === `Basic ${b64("proxy-user:proxy-pass")}`),
        );
      } finally {
        await namespaces.stop();
      }
    },
  );

  it(
    "goes through HTTPS_PROXY to a server named only through the proxy",
    { timeout: testTimeoutMs },
    async () => {
      const apiPort = Number(new URL(plane.server).port);
      const proxy = await startConnectProxy({ upstreamPort: apiPort });
      proxies.push(proxy);
      // The serving certificate names kubernetes.default.svc; nothing resolves it but the proxy.
      const server = `https://kubernetes.default.svc:${apiPort}`;
      const file = await adminConfig("via-env", { server });
      const access = loadKubeConfig({
        path: file,
        env: { HTTPS_PROXY: proxy.url, NO_PROXY: "other.example" },
      });
      opened.push(access);

      const list = await new KubeClient(access).get<{ items: unknown[] }>("/api/v1/namespaces");

      assert.ok(list.items.length > 0);
      assert.deepEqual(
        [...new Set(proxy.tunnels.map((t) => t.target))],
        [`kubernetes.default.svc:${apiPort}`],
      );
    },
  );
});
