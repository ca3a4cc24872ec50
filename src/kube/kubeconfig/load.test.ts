import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent as HttpAgent, type OutgoingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, createServer, request, type RequestOptions } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { TLSSocket } from "node:tls";
import { after, afterEach, before, describe, it } from "node:test";
import { stringify } from "yaml";

import { createCertificateAuthority, issueCertificate, type KeyPair } from "../../../test/harness/certs.ts";
import { runRecordingResolves } from "../../../test/harness/module-resolution.ts";
import { ManualClock } from "../../clock.ts";
import { IDLE_SOCKET_TIMEOUT_MS, type ClusterAccess } from "./cluster-access.ts";
import { KubeConfigError } from "./kubeconfig-error.ts";
import { loadKubeConfig, type KubeConfigSources, type LoadOptions } from "./load.ts";
import { TOKEN_REREAD_MS } from "./token-file.ts";

let root: string;
const opened: ClusterAccess[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), "kubeconfig-test-"));
});

afterEach(() => {
  for (const access of opened.splice(0)) access.close();
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

function load(sources: KubeConfigSources, options?: LoadOptions): ClusterAccess {
  const access = loadKubeConfig(sources, options);
  opened.push(access);
  return access;
}

function caseDir(): Promise<string> {
  return mkdtemp(join(root, "case-"));
}

/** A kubeconfig with one context "dev" joining cluster "dev-cluster" and user "dev-user". */
function kubeConfig(cluster: object, user: object): object {
  return {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "dev",
    clusters: [{ name: "dev-cluster", cluster }],
    users: [{ name: "dev-user", user }],
    contexts: [{ name: "dev", context: { cluster: "dev-cluster", user: "dev-user" } }],
  };
}

async function writeKubeConfig(dir: string, name: string, doc: object): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, stringify(doc));
  return file;
}

async function applied(access: ClusterAccess, options: RequestOptions = {}): Promise<RequestOptions> {
  await access.applyToHTTPSOptions(options);
  return options;
}

async function authorization(access: ClusterAccess): Promise<unknown> {
  const { headers } = await applied(access);
  return (headers as OutgoingHttpHeaders | undefined)?.Authorization;
}

/** A kubeconfig whose user's tokenFile holds `content`, loaded with a manual clock. */
async function withTokenFile(
  content: string,
): Promise<{ tokenFile: string; clock: ManualClock; access: ClusterAccess }> {
  const dir = await caseDir();
  const tokenFile = join(dir, "token");
  await writeFile(tokenFile, content);
  const file = await writeKubeConfig(dir, "config", kubeConfig({ server }, { tokenFile: "token" }));
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  return { tokenFile, clock, access: load({ path: file, env: {} }, { clock }) };
}

/** Writes `doc` as a kubeconfig and checks that loading it fails as `check` says. */
async function refuses(doc: object, check: (err: unknown) => true): Promise<void> {
  const file = await writeKubeConfig(await caseDir(), "config", doc);
  assert.throws(() => load({ path: file, env: {} }), check);
}

/** Checks a KubeConfigError's message, and that it reveals none of `secrets`. */
function isKubeConfigError(message: RegExp, secrets: readonly string[] = []) {
  return (err: unknown): true => {
    assert.ok(err instanceof KubeConfigError, `expected a KubeConfigError, got ${String(err)}`);
    assert.match(err.message, message);
    for (const secret of secrets) {
      assert.ok(!err.message.includes(secret), `the message reveals a secret: ${err.message}`);
    }
    return true;
  };
}

const server = "https://kube.example:6443";
const base64 = (pem: string): string => Buffer.from(pem).toString("base64");

describe("loadKubeConfig from a kubeconfig file", () => {
  let ca: KeyPair;
  let serving: KeyPair;
  let client: KeyPair;

  before(async () => {
    const dir = await caseDir();
    const authority = await createCertificateAuthority(dir);
    ca = authority;
    serving = await issueCertificate(authority, {
      fileName: "server",
      commonName: "kube-apiserver",
      altNames: ["DNS:kubernetes.internal"],
      usage: "server",
    });
    client = await issueCertificate(authority, { fileName: "client", commonName: "alice", usage: "client" });
  });

  it("applies the CA, client certificate and token through one shared keep-alive agent", async () => {
    const dir = await caseDir();
    const file = join(dir, "config");
    await writeFile(
      file,
      [
        "apiVersion: v1",
        "kind: Config",
        "current-context: dev",
        "clusters:",
        "  - name: dev-cluster",
        "    cluster:",
        `      server: ${server}/`,
        `      certificate-authority-data: ${base64(ca.certPem)}`,
        "users:",
        "  - name: dev-user",
        "    user:",
        `      client-certificate-data: ${base64(client.certPem)}`,
        `      client-key-data: ${base64(client.keyPem)}`,
        "      token: static-token-1",
        "contexts:",
        "  - name: dev",
        "    context: { cluster: dev-cluster, user: dev-user }",
        "",
      ].join("\n"),
    );
    const access = load({ path: file, env: {} });

    const first = await applied(access, { headers: { accept: "application/json" } });
    const second = await applied(access);

    assert.deepEqual(first.ca, Buffer.from(ca.certPem));
    assert.deepEqual(first.cert, Buffer.from(client.certPem));
    assert.deepEqual(first.key, Buffer.from(client.keyPem));
    assert.equal(first.rejectUnauthorized, true);
    assert.deepEqual(first.headers, { accept: "application/json", Authorization: "Bearer static-token-1" });
    assert.ok(first.agent instanceof HttpsAgent);
    assert.equal(second.agent, first.agent);
    assert.equal(
      first.agent.options.timeout,
      IDLE_SOCKET_TIMEOUT_MS,
      "idle sockets close before the server's 90 s",
    );
    assert.equal(access.server, server);
    assert.equal(access.currentContext, "dev");
    assert.deepEqual(access.getCurrentCluster(), { name: "dev-cluster", server });
  });

  it("connects to a server that checks the client certificate, using tls-server-name", async (t) => {
    const https = createServer(
      { cert: serving.certPem, key: serving.keyPem, ca: ca.certPem, requestCert: true },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.end(JSON.stringify({ user: peer.subject.CN, authorization: req.headers.authorization }));
      },
    );
    await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
    t.after(() => {
      https.closeAllConnections();
      https.close();
    });
    const dir = await caseDir();
    const url = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
    const file = await writeKubeConfig(
      dir,
      "config",
      kubeConfig(
        {
          server: url,
          "certificate-authority-data": base64(ca.certPem),
          "tls-server-name": "kubernetes.internal",
        },
        {
          "client-certificate-data": base64(client.certPem),
          "client-key-data": base64(client.keyPem),
          token: "static-token-2",
        },
      ),
    );
    const access = load({ path: file, env: {} });

    const body = await new Promise<string>((resolve, reject) => {
      void applied(access).then((options) => {
        const req = request(`${url}/api`, options, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () => {
            resolve(text);
          });
        });
        req.on("error", reject);
        req.end();
      }, reject);
    });

    assert.deepEqual(JSON.parse(body), { user: "alice", authorization: "Bearer static-token-2" });
  });

  it("reads certificate files relative to the kubeconfig's directory", async () => {
    const dir = await caseDir();
    await mkdir(join(dir, "pki"));
    await writeFile(join(dir, "pki", "ca.crt"), ca.certPem);
    await writeFile(join(dir, "pki", "alice.crt"), client.certPem);
    await writeFile(join(dir, "pki", "alice.key"), client.keyPem);
    const file = await writeKubeConfig(
      dir,
      "config",
      kubeConfig(
        { server, "certificate-authority": "pki/ca.crt" },
        { "client-certificate": "pki/alice.crt", "client-key": join(dir, "pki", "alice.key") },
      ),
    );

    const options = await applied(load({ path: file, env: {} }));

    assert.deepEqual(options.ca, Buffer.from(ca.certPem));
    assert.deepEqual(options.cert, Buffer.from(client.certPem));
    assert.deepEqual(options.key, Buffer.from(client.keyPem));
    assert.equal(options.headers, undefined);
  });

  it("names a certificate file it cannot read", async () => {
    const dir = await caseDir();
    const file = await writeKubeConfig(
      dir,
      "config",
      kubeConfig({ server, "certificate-authority": "ca.crt" }, {}),
    );

    assert.throws(
      () => load({ path: file, env: {} }),
      isKubeConfigError(/cluster "dev-cluster": certificate-authority: cannot read .*ca\.crt \(ENOENT\)/),
    );
  });

  it("sends Basic credentials, keeping a numeric password as written", async () => {
    const dir = await caseDir();
    const file = join(dir, "config");
    await writeFile(
      file,
      stringify(kubeConfig({ server }, { username: "admin", password: "PASSWORD" })).replace(
        "PASSWORD",
        "0123",
      ),
    );

    const header = await authorization(load({ path: file, env: {} }));

    assert.equal(header, `Basic ${Buffer.from("admin:0123").toString("base64")}`);
  });

  it("skips TLS verification when insecure-skip-tls-verify is true", async () => {
    const dir = await caseDir();
    const file = await writeKubeConfig(
      dir,
      "config",
      kubeConfig({ server, "insecure-skip-tls-verify": true }, { token: "t" }),
    );

    const options = await applied(load({ path: file, env: {} }));

    assert.equal(options.rejectUnauthorized, false);
  });

  it("uses a plain keep-alive agent for an http:// server and sends it no credentials, as client-go", async () => {
    const dir = await caseDir();
    const file = await writeKubeConfig(
      dir,
      "config",
      kubeConfig({ server: "http://127.0.0.1:8080" }, { token: "cleartext-token" }),
    );

    const options = await applied(load({ path: file, env: {} }));

    assert.ok(options.agent instanceof HttpAgent);
    assert.ok(!(options.agent instanceof HttpsAgent));
    assert.equal(options.headers, undefined);
  });

  it("takes a server without a scheme as https://", async () => {
    const dir = await caseDir();
    const file = await writeKubeConfig(dir, "config", kubeConfig({ server: "kube.example:6443" }, {}));

    const access = load({ path: file, env: {} });

    assert.equal(access.server, "https://kube.example:6443");
    assert.ok((await applied(access)).agent instanceof HttpsAgent);
  });

  it("refuses a name used twice in one file, as client-go does", async () => {
    const doc = kubeConfig({ server }, {}) as Record<string, unknown>;
    doc.users = [
      { name: "dev-user", user: { token: "secret-token-a" } },
      { name: "dev-user", user: { token: "secret-token-b" } },
    ];

    await refuses(
      doc,
      isKubeConfigError(/users has more than one entry named "dev-user"/, [
        "secret-token-a",
        "secret-token-b",
      ]),
    );
  });

  it("refuses *-data that is not base64 at load, without quoting it", async () => {
    await refuses(
      kubeConfig({ server }, { "client-certificate-data": "not*base64", "client-key-data": base64("k") }),
      isKubeConfigError(/user "dev-user": client-certificate-data is not valid base64$/, ["not*base64"]),
    );
  });

  it("refuses a CA together with insecure-skip-tls-verify, as client-go does", async () => {
    await refuses(
      kubeConfig(
        { server, "insecure-skip-tls-verify": true, "certificate-authority-data": base64(ca.certPem) },
        {},
      ),
      isKubeConfigError(/certificate-authority and insecure-skip-tls-verify are both set/),
    );
  });

  it("re-reads a tokenFile at most once a minute", async () => {
    const { tokenFile, clock, access } = await withTokenFile("rotating-1\n");

    assert.equal(await authorization(access), "Bearer rotating-1");
    await writeFile(tokenFile, "rotating-2\n");
    clock.advance(TOKEN_REREAD_MS - 1);
    assert.equal(await authorization(access), "Bearer rotating-1");
    clock.advance(1);
    assert.equal(await authorization(access), "Bearer rotating-2");
  });

  it("keeps the last good token when a re-read of the tokenFile fails", async () => {
    const { tokenFile, clock, access } = await withTokenFile("rotating-1\n");

    await rm(tokenFile);
    clock.advance(TOKEN_REREAD_MS);
    assert.equal(await authorization(access), "Bearer rotating-1", "the file is gone");
    await writeFile(tokenFile, "  \n");
    clock.advance(TOKEN_REREAD_MS);
    assert.equal(await authorization(access), "Bearer rotating-1", "the file is empty");
    await writeFile(tokenFile, "rotating-2\n");
    clock.advance(TOKEN_REREAD_MS);
    assert.equal(await authorization(access), "Bearer rotating-2");
  });

  it("rejects auth-provider users and points to exec plugins", async () => {
    const dir = await caseDir();
    const file = await writeKubeConfig(
      dir,
      "config",
      kubeConfig(
        { server },
        { "auth-provider": { name: "oidc", config: { "id-token": "oidc-secret-token" } } },
      ),
    );

    assert.throws(
      () => load({ path: file, env: {} }),
      isKubeConfigError(/user "dev-user": auth-provider oidc is not supported.*exec credential plugin/, [
        "oidc-secret-token",
      ]),
    );
  });

  it("goes through the cluster's proxy-url, which wins over the environment's proxy", async () => {
    const dir = await caseDir();
    const file = await writeKubeConfig(
      dir,
      "config",
      kubeConfig({ server, "proxy-url": "http://proxy.internal:3128" }, {}),
    );

    const access = load({ path: file, env: { HTTPS_PROXY: "http://other:8080" } });

    assert.equal(access.proxy?.href, "http://proxy.internal:3128/");
  });

  it("goes through HTTPS_PROXY unless NO_PROXY names the server", async () => {
    const dir = await caseDir();
    const file = await writeKubeConfig(dir, "config", kubeConfig({ server }, {}));

    assert.equal(load({ path: file, env: { HTTPS_PROXY: "proxy:3128" } }).proxy?.href, "http://proxy:3128/");
    assert.equal(
      load({ path: file, env: { HTTPS_PROXY: "proxy:3128", NO_PROXY: ".example" } }).proxy,
      undefined,
    );
    assert.equal(
      load({ path: file, env: { HTTP_PROXY: "proxy:3128" } }).proxy,
      undefined,
      "HTTP_PROXY is for http://",
    );
  });

  it("refuses a SOCKS5 or malformed proxy-url", async () => {
    const dir = await caseDir();
    for (const [proxyUrl, message] of [
      ["socks5://127.0.0.1:1080", /proxy-url: SOCKS5 proxies are not supported/],
      ["ftp://proxy:21", /proxy-url must be an http:\/\/ or https:\/\/ URL/],
    ] as const) {
      const file = await writeKubeConfig(dir, "config", kubeConfig({ server, "proxy-url": proxyUrl }, {}));
      assert.throws(() => load({ path: file, env: {} }), isKubeConfigError(message));
    }
  });

  const broken: { name: string; edit: (doc: Record<string, unknown>) => void; message: RegExp }[] = [
    {
      name: "no current-context",
      edit: (doc) => delete doc["current-context"],
      message: /current-context is not set/,
    },
    {
      name: "an unknown current-context",
      edit: (doc) => (doc["current-context"] = "prod"),
      message: /context "prod" is not defined/,
    },
    {
      name: "an unknown cluster",
      edit: (doc) => (doc.clusters = []),
      message: /context "dev": cluster "dev-cluster" is not defined/,
    },
    {
      name: "an unknown user",
      edit: (doc) => (doc.users = [{ name: "other", user: { token: "secret-token-other" } }]),
      message: /context "dev": user "dev-user" is not defined/,
    },
    {
      name: "a cluster without server",
      edit: (doc) => (doc.clusters = [{ name: "dev-cluster", cluster: {} }]),
      message: /cluster "dev-cluster": server is not set/,
    },
    {
      name: "both a token and a password",
      edit: (doc) =>
        (doc.users = [
          {
            name: "dev-user",
            user: { token: "secret-token-both", username: "u", password: "secret-password" },
          },
        ]),
      message: /user "dev-user": set a token or a username and password, not both/,
    },
  ];
  for (const { name, edit, message } of broken) {
    it(`names what is wrong in a kubeconfig with ${name}`, async () => {
      const dir = await caseDir();
      const doc = kubeConfig({ server }, { token: "secret-token-dev" }) as Record<string, unknown>;
      edit(doc);
      const file = await writeKubeConfig(dir, "config", doc);

      assert.throws(
        () => load({ path: file, env: {} }),
        isKubeConfigError(message, [
          "secret-token-dev",
          "secret-token-other",
          "secret-token-both",
          "secret-password",
        ]),
      );
    });
  }

  it("reports invalid YAML by position without quoting the line", async () => {
    const dir = await caseDir();
    const file = join(dir, "config");
    await writeFile(file, "users:\n- name: dev-user\n  user:\n    token: secret-token-yaml: [\n");

    assert.throws(
      () => load({ path: file, env: {} }),
      isKubeConfigError(/config: not valid YAML \(line 4, column \d+\)/, ["secret-token-yaml"]),
    );
  });
});

describe("loadKubeConfig resolution order", () => {
  it("merges KUBECONFIG files: the first current-context and the first entry of each name win", async () => {
    const dir = await caseDir();
    const first = await writeKubeConfig(dir, "first", {
      clusters: [{ name: "dev-cluster", cluster: { server: "https://first:6443" } }],
      users: [{ name: "dev-user", user: { token: "first-token" } }],
    });
    const second = await writeKubeConfig(dir, "second", {
      "current-context": "dev",
      clusters: [{ name: "dev-cluster", cluster: { server: "https://second:6443" } }],
      users: [{ name: "dev-user", user: { token: "second-token" } }],
      contexts: [{ name: "dev", context: { cluster: "dev-cluster", user: "dev-user" } }],
    });
    const third = await writeKubeConfig(dir, "third", {
      ...kubeConfig({ server }, { token: "third-token" }),
      "current-context": "prod",
    });
    const listed = [join(dir, "missing"), "", first, second, third].join(delimiter);

    const access = load({ env: { KUBECONFIG: listed } });

    assert.equal(access.server, "https://first:6443");
    assert.equal(await authorization(access), "Bearer first-token");
  });

  it("fails when no file listed in KUBECONFIG exists", async () => {
    const dir = await caseDir();
    const missing = join(dir, "missing");

    assert.throws(
      () => load({ env: { KUBECONFIG: missing, HOME: dir } }),
      isKubeConfigError(new RegExp(`none of the files in KUBECONFIG exists: ${missing}`)),
    );
  });

  it("prefers the --kubeconfig path over KUBECONFIG", async () => {
    const dir = await caseDir();
    const explicit = await writeKubeConfig(
      dir,
      "explicit",
      kubeConfig({ server: "https://explicit:6443" }, {}),
    );
    const fromEnv = await writeKubeConfig(dir, "env", kubeConfig({ server: "https://env:6443" }, {}));

    const access = load({ path: explicit, env: { KUBECONFIG: fromEnv } });

    assert.equal(access.server, "https://explicit:6443");
  });

  it("merges a --kubeconfig list like KUBECONFIG, since the flag takes that variable's value", async () => {
    const dir = await caseDir();
    const first = await writeKubeConfig(dir, "first", kubeConfig({ server: "https://first:6443" }, {}));
    const second = await writeKubeConfig(dir, "second", kubeConfig({ server: "https://second:6443" }, {}));

    const access = load({ path: [join(dir, "missing"), first, second].join(delimiter), env: {} });

    assert.equal(access.server, "https://first:6443");
    assert.throws(
      () => load({ path: [join(dir, "missing"), join(dir, "gone")].join(delimiter), env: {} }),
      isKubeConfigError(/none of the files in --kubeconfig exists/),
    );
  });

  it("uses the in-cluster ServiceAccount before $HOME/.kube/config, bracketing an IPv6 host", async () => {
    const dir = await caseDir();
    const serviceAccountDir = join(dir, "serviceaccount");
    await mkdir(serviceAccountDir);
    await writeFile(join(serviceAccountDir, "ca.crt"), "in-cluster-ca");
    await writeFile(join(serviceAccountDir, "token"), "sa-token-1");
    await mkdir(join(dir, ".kube"));
    await writeKubeConfig(join(dir, ".kube"), "config", kubeConfig({ server }, {}));
    const env = { HOME: dir, KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" };
    const clock = new ManualClock(Date.UTC(2030, 0, 1));

    const access = load({ env, serviceAccountDir }, { clock });
    const options = await applied(access);

    assert.equal(access.server, "https://[fd00::1]:443");
    assert.equal(access.currentContext, "in-cluster");
    assert.deepEqual(options.ca, Buffer.from("in-cluster-ca"));
    assert.equal((options.headers as OutgoingHttpHeaders).Authorization, "Bearer sa-token-1");

    await writeFile(join(serviceAccountDir, "token"), "sa-token-2");
    clock.advance(TOKEN_REREAD_MS);
    assert.equal(await authorization(access), "Bearer sa-token-2");
  });

  it("loads the YAML parser only once it reads a kubeconfig file, not for the in-cluster ServiceAccount", async () => {
    const dir = await caseDir();
    await writeFile(join(dir, "ca.crt"), "in-cluster-ca");
    await writeFile(join(dir, "token"), "sa-token");
    const file = await writeKubeConfig(dir, "config", kubeConfig({ server }, {}));
    // A fresh process, where nothing else has loaded it: whether "yaml" is resolved after each load.
    const script = `
      const [, loadUrl, dir, file] = process.argv;
      const { loadKubeConfig } = await import(loadUrl);
      const env = { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };
      loadKubeConfig({ env, serviceAccountDir: dir }).close();
      const inCluster = resolved.has("yaml");
      loadKubeConfig({ path: file, env: {} }).close();
      process.stdout.write(JSON.stringify({ inCluster, file: resolved.has("yaml") }));
    `;
    const loadUrl = new URL("./load.ts", import.meta.url).href;
    const printed = await runRecordingResolves(script, [loadUrl, dir, file]);
    assert.deepEqual(printed, { inCluster: false, file: true });
  });

  it("falls back to $HOME/.kube/config", async () => {
    const dir = await caseDir();
    await mkdir(join(dir, ".kube"));
    await writeKubeConfig(join(dir, ".kube"), "config", kubeConfig({ server }, {}));

    const access = load({ env: { HOME: dir }, serviceAccountDir: join(dir, "none") });

    assert.equal(access.server, server);
  });

  it("lists what it tried when no configuration is found", async () => {
    const dir = await caseDir();
    const serviceAccountDir = join(dir, "serviceaccount");
    const env = { HOME: dir, KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };

    assert.throws(
      () => load({ env, serviceAccountDir }),
      isKubeConfigError(
        new RegExp(
          `no Kubernetes configuration found; tried KUBECONFIG \\(not set\\), ` +
            `in-cluster \\(${join(serviceAccountDir, "token")} not found\\), ` +
            `${join(dir, ".kube", "config")} \\(not found\\)`,
        ),
      ),
    );
  });
});

describe("loadKubeConfig with an exec credential plugin", () => {
  // Prints an ExecCredential and appends one line per run to RUNS_FILE.
  const plugin = `
import { appendFileSync, readFileSync } from "node:fs";
const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO);
appendFileSync(process.env.RUNS_FILE, JSON.stringify({ info, parent: process.env.FROM_PARENT }) + "\\n");
const runs = readFileSync(process.env.RUNS_FILE, "utf8").trim().split("\\n").length;
const status = { token: "exec-token-" + runs };
if (process.env.EXPIRES) status.expirationTimestamp = process.env.EXPIRES;
if (process.env.MODE === "certificate") {
  status.clientCertificateData = "-----BEGIN CERTIFICATE-----" + runs;
  status.clientKeyData = "-----BEGIN PRIVATE KEY-----" + runs;
}
if (process.env.MODE === "certificate-only") status.clientCertificateData = "-----BEGIN CERTIFICATE-----";
if (process.env.MODE === "garbage") {
  process.stdout.write("exec-token-garbage");
} else {
  process.stdout.write(JSON.stringify({ apiVersion: info.apiVersion, kind: "ExecCredential", status }));
}
if (process.env.MODE === "fail") {
  process.stderr.write("error: access denied for profile dev\\nsecond line\\n");
  process.exit(3);
}
`;
  const start = Date.UTC(2030, 0, 1);

  interface PluginCase {
    env?: Record<string, string>;
    exec?: Record<string, unknown>;
    cluster?: Record<string, unknown>;
    user?: Record<string, unknown>;
  }

  async function withPlugin(setup: PluginCase = {}, clock = new ManualClock(start)) {
    const dir = await caseDir();
    const script = join(dir, "plugin.mjs");
    const runsFile = join(dir, "runs");
    await writeFile(script, plugin);
    await writeFile(runsFile, "");
    const env = Object.entries({ RUNS_FILE: runsFile, ...setup.env }).map(([name, value]) => ({
      name,
      value,
    }));
    const exec = {
      apiVersion: "client.authentication.k8s.io/v1",
      interactiveMode: "Never",
      command: process.execPath,
      args: [script],
      env,
      ...setup.exec,
    };
    const file = await writeKubeConfig(
      dir,
      "config",
      kubeConfig({ server, ...setup.cluster }, { exec, ...setup.user }),
    );
    const access = load({ path: file, env: { FROM_PARENT: "parent-value" } }, { clock });
    const runs = async (): Promise<{ info: unknown; parent: unknown }[]> =>
      (await readFile(runsFile, "utf8"))
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as { info: unknown; parent: unknown });
    return { access, clock, runs };
  }

  it("sends the plugin's token and runs it again shortly before the token expires", async () => {
    const expires = new Date(start + 60_000).toISOString();
    const { access, clock, runs } = await withPlugin({ env: { EXPIRES: expires } });

    assert.equal(await authorization(access), "Bearer exec-token-1");
    clock.advance(49_000);
    assert.equal(await authorization(access), "Bearer exec-token-1");
    clock.advance(1_000);
    assert.equal(await authorization(access), "Bearer exec-token-2");

    const recorded = await runs();
    assert.equal(recorded.length, 2);
    assert.deepEqual(recorded[0], {
      info: {
        apiVersion: "client.authentication.k8s.io/v1",
        kind: "ExecCredential",
        spec: { interactive: false },
      },
      parent: "parent-value",
    });
  });

  it("uses a token with less than 10 s of life until halfway, instead of running the plugin per request", async () => {
    const expires = new Date(start + 6_000).toISOString();
    const { access, clock, runs } = await withPlugin({ env: { EXPIRES: expires } });

    const headers = [await authorization(access), await authorization(access)];
    clock.advance(2_999);
    headers.push(await authorization(access));
    clock.advance(1);
    headers.push(await authorization(access));

    assert.deepEqual(headers, [
      "Bearer exec-token-1",
      "Bearer exec-token-1",
      "Bearer exec-token-1",
      "Bearer exec-token-2",
    ]);
    assert.equal((await runs()).length, 2);
  });

  it("runs the plugin once for concurrent requests and keeps a token without expiry until a 401", async () => {
    const { access, clock, runs } = await withPlugin();

    const requests = await Promise.all([applied(access), applied(access), applied(access)]);
    clock.advance(365 * 24 * 3_600_000);
    const later = await applied(access);
    const tokens = [...requests, later].map(
      (options) => (options.headers as OutgoingHttpHeaders).Authorization,
    );
    assert.deepEqual(tokens, Array(4).fill("Bearer exec-token-1"));
    assert.equal((await runs()).length, 1);

    access.credentialRejected(later);
    // A 401 to a request that carried the same, already replaced, token runs the plugin no more.
    const renewed = await authorization(access);
    access.credentialRejected(requests[0]);
    assert.equal(renewed, "Bearer exec-token-2");
    assert.equal(await authorization(access), "Bearer exec-token-2");
    assert.equal((await runs()).length, 2);
  });

  it("sends the client certificate and key a plugin returns, and its token", async () => {
    const { access } = await withPlugin({ env: { MODE: "certificate" } });

    const options = await applied(access);

    assert.equal(options.cert, "-----BEGIN CERTIFICATE-----1");
    assert.equal(options.key, "-----BEGIN PRIVATE KEY-----1");
    assert.equal((options.headers as OutgoingHttpHeaders).Authorization, "Bearer exec-token-1");
  });

  it("refuses a plugin's certificate without its key", async () => {
    const { access } = await withPlugin({ env: { MODE: "certificate-only" } });

    await assert.rejects(
      authorization(access),
      isKubeConfigError(/returned clientCertificateData and clientKeyData, but not both/, ["exec-token-1"]),
    );
  });

  it("tells the plugin about the cluster when provideClusterInfo is set, CA file and exec extension included", async () => {
    const dir = await caseDir();
    await writeFile(join(dir, "ca.crt"), "cluster-ca-pem");
    const { access, runs } = await withPlugin({
      exec: { provideClusterInfo: true },
      cluster: {
        "certificate-authority": join(dir, "ca.crt"),
        "tls-server-name": "kube.internal",
        extensions: [
          {
            name: "client.authentication.k8s.io/exec",
            extension: { audience: "kube", port: 8443, strict: true },
          },
          { name: "other", extension: { ignored: true } },
        ],
      },
    });

    await authorization(access);

    const [first] = await runs();
    assert.deepEqual(first?.info, {
      apiVersion: "client.authentication.k8s.io/v1",
      kind: "ExecCredential",
      spec: {
        cluster: {
          server,
          "tls-server-name": "kube.internal",
          "certificate-authority-data": Buffer.from("cluster-ca-pem").toString("base64"),
          config: { audience: "kube", port: 8443, strict: true },
        },
        interactive: false,
      },
    });
  });

  it("does not run the plugin when the user has a client certificate, as client-go", async () => {
    const { access, runs } = await withPlugin({
      user: { "client-certificate-data": base64("cert"), "client-key-data": base64("key") },
    });

    const options = await applied(access);

    assert.equal(options.headers, undefined);
    assert.deepEqual(options.cert, Buffer.from("cert"));
    assert.equal((await runs()).length, 0);
  });

  it("refuses interactiveMode Always, and a v1 plugin that does not state its mode", async () => {
    await assert.rejects(
      withPlugin({ exec: { interactiveMode: "Always" } }),
      isKubeConfigError(/interactiveMode is Always, but the operator has no terminal/),
    );
    await assert.rejects(
      withPlugin({ exec: { interactiveMode: undefined } }),
      isKubeConfigError(/interactiveMode must be set for client.authentication.k8s.io\/v1$/),
    );
    const beta = await withPlugin({
      exec: { interactiveMode: undefined, apiVersion: "client.authentication.k8s.io/v1beta1" },
    });
    assert.equal(await authorization(beta.access), "Bearer exec-token-1", "v1beta1 defaults to IfAvailable");
  });

  it("reports a failing plugin by exit code and stderr's first line, never its output", async () => {
    const { access } = await withPlugin({ env: { MODE: "fail" } });

    await assert.rejects(
      authorization(access),
      isKubeConfigError(/exec: .* exited with code 3: error: access denied for profile dev$/, [
        "exec-token-1",
      ]),
    );
  });

  it("runs a failed plugin again on the next request", async () => {
    const { access, runs } = await withPlugin({ env: { MODE: "fail" } });

    await assert.rejects(authorization(access), KubeConfigError);
    await assert.rejects(authorization(access), KubeConfigError);

    assert.equal((await runs()).length, 2);
  });

  it("reports output that is not JSON without quoting it", async () => {
    const { access } = await withPlugin({ env: { MODE: "garbage" } });

    await assert.rejects(
      authorization(access),
      isKubeConfigError(/printed something that is not JSON/, ["exec-token-garbage"]),
    );
  });
});
