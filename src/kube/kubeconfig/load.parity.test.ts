// Parity of loadKubeConfig with client-node's KubeConfig, the oracle: for each kubeconfig both
// resolve the server, the TLS settings (CA, client certificate and key, server name, insecure flag),
// the proxy and the credential, and must agree; where this client follows client-go instead, or
// refuses what client-go refuses, the case says so, checks both sides, and names the paragraph of
// docs/kube-client.md that documents the difference.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import type { RequestOptions } from "node:https";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { repoRoot } from "../../../test/harness/paths.ts";
import type { ClusterAccess } from "./cluster-access.ts";
import { KubeConfigError } from "./kubeconfig-error.ts";
import { loadKubeConfig } from "./load.ts";

/** What a client resolves from a kubeconfig; absent fields are unset. */
interface Resolved {
  server: string;
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  insecure: boolean;
  proxy?: string;
  authorization?: string;
}

type Expectation =
  | { kind: "same" }
  /** client-go refuses it, and so does this client; client-node's own outcome is checked too. */
  | { kind: "refused"; message: RegExp; clientNode: "accepts" | "refuses"; documented?: string }
  /** An intended difference: both sides are checked against what the documentation says. */
  | {
      kind: "differs";
      documented: string;
      ours: Partial<Resolved>;
      clientNode: Partial<Resolved> | "refuses";
    };

interface Source {
  /** Files written into the case's directory: YAML documents, or raw text. */
  files: Record<string, object | string>;
  /** The KUBECONFIG list, by file name. */
  kubeconfig?: string[];
  /** In-cluster instead: KUBERNETES_SERVICE_HOST and the ServiceAccount files. */
  inCluster?: { host: string; port: string; token: string; ca: string };
}

interface ParityCase extends Source {
  name: string;
  expect: Expectation;
}

const ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const cert = "-----BEGIN CERTIFICATE-----\nALICE\n-----END CERTIFICATE-----\n";
const key = "-----BEGIN PRIVATE KEY-----\nALICE\n-----END PRIVATE KEY-----\n";
const b64 = (text: string): string => Buffer.from(text).toString("base64");
const server = "https://kube.example:6443";

/** One context "dev" joining cluster "c" and user "u". */
function config(cluster: object, user: object | undefined, extra: object = {}): object {
  return {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "dev",
    clusters: [{ name: "c", cluster }],
    users: user === undefined ? [] : [{ name: "u", user }],
    contexts: [{ name: "dev", context: user === undefined ? { cluster: "c" } : { cluster: "c", user: "u" } }],
    ...extra,
  };
}

/** An exec plugin that prints a fixed token (and with a third argument, a client certificate). */
const plugin = `
const [version, mode] = process.argv.slice(2);
const status = { token: "exec-token-" + version };
if (mode === "certificate") {
  status.clientCertificateData = ${JSON.stringify(cert)};
  status.clientKeyData = ${JSON.stringify(key)};
}
process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/" + version, kind: "ExecCredential", status }));
`;

function exec(version: "v1" | "v1beta1", extra: object = {}, mode?: string): object {
  return {
    exec: {
      apiVersion: `client.authentication.k8s.io/${version}`,
      command: process.execPath,
      args: ["plugin.mjs", version, ...(mode === undefined ? [] : [mode])],
      ...(version === "v1" ? { interactiveMode: "Never" } : {}),
      ...extra,
    },
  };
}

const cases: ParityCase[] = [
  {
    name: "a token and CA data",
    files: { config: config({ server, "certificate-authority-data": b64(ca) }, { token: "t-1" }) },
    expect: { kind: "same" },
  },
  {
    name: "a client certificate and key as data",
    files: {
      config: config(
        { server, "certificate-authority-data": b64(ca) },
        { "client-certificate-data": b64(cert), "client-key-data": b64(key) },
      ),
    },
    expect: { kind: "same" },
  },
  {
    name: "CA, certificate and key files by relative paths",
    files: {
      "pki/ca.crt": ca,
      "pki/alice.crt": cert,
      "pki/alice.key": key,
      config: config(
        { server, "certificate-authority": "pki/ca.crt" },
        { "client-certificate": "pki/alice.crt", "client-key": "pki/alice.key" },
      ),
    },
    expect: { kind: "same" },
  },
  {
    name: "tls-server-name",
    files: {
      config: config(
        { server, "certificate-authority-data": b64(ca), "tls-server-name": "kube.internal" },
        { token: "t" },
      ),
    },
    expect: { kind: "same" },
  },
  {
    name: "insecure-skip-tls-verify without a CA",
    files: { config: config({ server, "insecure-skip-tls-verify": true }, { token: "t" }) },
    expect: { kind: "same" },
  },
  {
    name: "basic auth",
    files: { config: config({ server }, { username: "admin", password: "pa:ss" }) },
    expect: { kind: "same" },
  },
  {
    name: "a server with a path prefix",
    files: { config: config({ server: "https://rancher.example/k8s/clusters/c-1" }, { token: "t" }) },
    expect: { kind: "same" },
  },
  {
    name: "an anonymous context (no user)",
    files: { config: config({ server, "certificate-authority-data": b64(ca) }, undefined) },
    expect: {
      kind: "differs",
      documented: "An anonymous context",
      ours: { ca },
      clientNode: { ca: undefined },
    },
  },
  {
    name: "an exec plugin, v1",
    files: { "plugin.mjs": plugin, config: config({ server }, exec("v1")) },
    expect: { kind: "same" },
  },
  {
    name: "an exec plugin, v1beta1",
    files: { "plugin.mjs": plugin, config: config({ server }, exec("v1beta1")) },
    expect: { kind: "same" },
  },
  {
    name: "an exec plugin returning a client certificate",
    files: { "plugin.mjs": plugin, config: config({ server }, exec("v1", {}, "certificate")) },
    expect: { kind: "same" },
  },
  {
    name: "an http:// proxy-url",
    files: { config: config({ server, "proxy-url": "http://proxy.internal:3128" }, { token: "t" }) },
    expect: { kind: "same" },
  },
  {
    name: "a KUBECONFIG list of disjoint files, current-context in the second",
    files: {
      a: { clusters: [{ name: "c", cluster: { server } }], users: [{ name: "u", user: { token: "t-a" } }] },
      b: { "current-context": "dev", contexts: [{ name: "dev", context: { cluster: "c", user: "u" } }] },
    },
    kubeconfig: ["a", "b"],
    expect: { kind: "same" },
  },
  {
    name: "in-cluster, IPv4",
    files: {},
    inCluster: { host: "10.96.0.1", port: "443", token: "sa-token", ca },
    expect: { kind: "same" },
  },
  {
    name: "in-cluster, IPv6",
    files: {},
    inCluster: { host: "fd00:10:96::1", port: "443", token: "sa-token", ca },
    expect: { kind: "same" },
  },
  {
    name: "a KUBECONFIG list naming the same cluster and user twice",
    files: {
      a: config({ server: "https://first:6443" }, { token: "t-first" }),
      b: { ...config({ server: "https://second:6443" }, { token: "t-second" }), "current-context": "other" },
    },
    kubeconfig: ["a", "b"],
    expect: {
      kind: "differs",
      documented: "Merged KUBECONFIG files",
      ours: { server: "https://first:6443", authorization: "Bearer t-first" },
      clientNode: "refuses",
    },
  },
  {
    name: "a KUBECONFIG list with a missing file",
    files: { a: config({ server }, { token: "t" }) },
    kubeconfig: ["missing", "a"],
    expect: {
      kind: "differs",
      documented: "Merged KUBECONFIG files",
      ours: { server },
      clientNode: "refuses",
    },
  },
  {
    name: "a tokenFile",
    files: { token: "file-token", config: config({ server }, { tokenFile: "token" }) },
    expect: {
      kind: "differs",
      documented: "tokenFile",
      ours: { authorization: "Bearer file-token" },
      clientNode: { authorization: undefined },
    },
  },
  {
    name: "a tokenFile and a token",
    files: { token: "file-token", config: config({ server }, { tokenFile: "token", token: "inline" }) },
    expect: {
      kind: "differs",
      documented: "tokenFile",
      ours: { authorization: "Bearer file-token" },
      clientNode: { authorization: "Bearer inline" },
    },
  },
  {
    name: "a server without a scheme",
    files: { config: config({ server: "kube.example:6443" }, { token: "t" }) },
    expect: {
      kind: "differs",
      documented: "A server without a scheme",
      ours: { server: "https://kube.example:6443", authorization: "Bearer t" },
      clientNode: { server: "kube.example:6443" },
    },
  },
  {
    name: "an http:// server with a token",
    files: {
      config: config({ server: "http://127.0.0.1:8080", "insecure-skip-tls-verify": true }, { token: "t" }),
    },
    expect: {
      kind: "differs",
      documented: "An http:// server",
      ours: { authorization: undefined },
      clientNode: { authorization: "Bearer t" },
    },
  },
  {
    name: "a SOCKS5 proxy-url",
    files: { config: config({ server, "proxy-url": "socks5://127.0.0.1:1080" }, { token: "t" }) },
    expect: {
      kind: "refused",
      message: /SOCKS5 proxies are not supported/,
      clientNode: "refuses",
      documented: "SOCKS5",
    },
  },
  {
    name: "a client certificate and an exec plugin",
    files: {
      "plugin.mjs": plugin,
      config: config(
        { server },
        { "client-certificate-data": b64(cert), "client-key-data": b64(key), ...exec("v1") },
      ),
    },
    expect: {
      kind: "differs",
      documented: "Static credentials win over an exec plugin",
      ours: { cert, authorization: undefined },
      clientNode: { cert, authorization: "Bearer exec-token-v1" },
    },
  },
  {
    name: "a CA with insecure-skip-tls-verify",
    files: {
      config: config(
        { server, "insecure-skip-tls-verify": true, "certificate-authority-data": b64(ca) },
        { token: "t" },
      ),
    },
    expect: {
      kind: "refused",
      message: /certificate-authority and insecure-skip-tls-verify are both set/,
      clientNode: "accepts",
    },
  },
  {
    name: "a user name used twice in one file",
    files: {
      config: {
        ...config({ server }, { token: "t-1" }),
        users: [
          { name: "u", user: { token: "t-1" } },
          { name: "u", user: { token: "t-2" } },
        ],
      },
    },
    expect: { kind: "refused", message: /users has more than one entry named "u"/, clientNode: "accepts" },
  },
  {
    name: "certificate-authority-data that is not base64",
    files: { config: config({ server, "certificate-authority-data": "not base64!" }, { token: "t" }) },
    expect: {
      kind: "refused",
      message: /certificate-authority-data is not valid base64/,
      clientNode: "accepts",
    },
  },
  {
    name: "a token and a password",
    files: { config: config({ server }, { token: "t", username: "u", password: "p" }) },
    expect: {
      kind: "refused",
      message: /set a token or a username and password, not both/,
      clientNode: "accepts",
    },
  },
  {
    name: "a client certificate without its key",
    files: { config: config({ server }, { "client-certificate-data": b64(cert) }) },
    expect: {
      kind: "refused",
      message: /client-certificate and client-key must be set together/,
      clientNode: "accepts",
    },
  },
  {
    name: "an exec plugin with interactiveMode Always",
    files: { "plugin.mjs": plugin, config: config({ server }, exec("v1", { interactiveMode: "Always" })) },
    expect: {
      kind: "refused",
      message: /interactiveMode is Always, but the operator has no terminal/,
      clientNode: "accepts",
      documented: "interactiveMode",
    },
  },
  {
    name: "a v1 exec plugin without interactiveMode",
    files: { "plugin.mjs": plugin, config: config({ server }, exec("v1", { interactiveMode: undefined })) },
    expect: {
      kind: "refused",
      message: /interactiveMode must be set/,
      clientNode: "accepts",
      documented: "interactiveMode",
    },
  },
  {
    name: "an auth-provider",
    files: { config: config({ server }, { "auth-provider": { name: "oidc", config: { "id-token": "x" } } }) },
    expect: {
      kind: "refused",
      message: /auth-provider oidc is not supported/,
      clientNode: "accepts",
      documented: "auth-provider",
    },
  },
  {
    name: "a context naming an undefined user",
    files: { config: { ...config({ server }, { token: "t" }), users: [] } },
    expect: { kind: "refused", message: /user "u" is not defined/, clientNode: "accepts" },
  },
  {
    name: "YAML that does not parse",
    files: { config: "clusters: [\n  - name: c\n" },
    expect: { kind: "refused", message: /not valid YAML/, clientNode: "refuses" },
  },
  {
    name: "a document whose top level is a list",
    files: { config: "- a\n- b\n" },
    expect: { kind: "refused", message: /the top level is not a map/, clientNode: "refuses" },
  },
];

let root: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "kubeconfig-parity-"));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeCase(dir: string, source: Source): Promise<void> {
  for (const [name, content] of Object.entries(source.files)) {
    const path = join(dir, name);
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, typeof content === "string" ? content : stringify(content));
  }
  if (source.inCluster !== undefined) {
    const accountDir = join(dir, "var/run/secrets/kubernetes.io/serviceaccount");
    await mkdir(accountDir, { recursive: true });
    await writeFile(join(accountDir, "token"), source.inCluster.token);
    await writeFile(join(accountDir, "ca.crt"), source.inCluster.ca);
  }
}

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  if (typeof value === "string") return value;
  throw new Error(`unexpected TLS value of type ${typeof value}`);
}

function authorizationOf(options: RequestOptions): string | undefined {
  const headers = options.headers as Record<string, unknown> | undefined;
  const header = headers?.Authorization;
  if (typeof header === "string") return header;
  // client-node puts Basic credentials into `auth`, which node:https turns into the same header.
  return options.auth === undefined || options.auth === null ? undefined : `Basic ${b64(options.auth)}`;
}

function resolved(server: string, options: RequestOptions, proxy: string | undefined): Resolved {
  const result: Resolved = { server, insecure: options.rejectUnauthorized === false };
  const fields = {
    ca: text(options.ca),
    cert: text(options.cert),
    key: text(options.key),
    servername: options.servername ?? undefined,
    proxy,
    authorization: authorizationOf(options),
  };
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) Object.assign(result, { [name]: value });
  }
  return result;
}

async function ours(dir: string, source: Source): Promise<Resolved> {
  const env: Record<string, string> = {};
  let access: ClusterAccess;
  if (source.inCluster === undefined) {
    env.KUBECONFIG = (source.kubeconfig ?? ["config"]).map((file) => join(dir, file)).join(delimiter);
    access = loadKubeConfig({ env });
  } else {
    env.KUBERNETES_SERVICE_HOST = source.inCluster.host;
    env.KUBERNETES_SERVICE_PORT = source.inCluster.port;
    access = loadKubeConfig({
      env,
      serviceAccountDir: join(dir, "var/run/secrets/kubernetes.io/serviceaccount"),
    });
  }
  try {
    const options: RequestOptions = {};
    await inDirectory(dir, () => access.applyToHTTPSOptions(options));
    return resolved(access.server, options, access.proxy?.href.replace(/\/$/, ""));
  } finally {
    access.close();
  }
}

/** Runs `step` from `dir`: the exec plugins' arguments name their script relative to it. */
async function inDirectory(dir: string, step: () => Promise<void>): Promise<void> {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    await step();
  } finally {
    process.chdir(cwd);
  }
}

/** client-node, loaded as its loadFromDefault loads KUBECONFIG, or from the cluster. */
async function clientNode(dir: string, source: Source): Promise<Resolved> {
  const kc = new KubeConfig();
  if (source.inCluster === undefined) {
    const [first = "config", ...rest] = source.kubeconfig ?? ["config"];
    kc.loadFromFile(join(dir, first));
    for (const file of rest) {
      const next = new KubeConfig();
      next.loadFromFile(join(dir, file));
      kc.mergeConfig(next);
    }
  } else {
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    process.env.KUBERNETES_SERVICE_HOST = source.inCluster.host;
    process.env.KUBERNETES_SERVICE_PORT = source.inCluster.port;
    try {
      kc.loadFromCluster(dir);
    } finally {
      for (const [name, value] of [
        ["KUBERNETES_SERVICE_HOST", saved.host],
        ["KUBERNETES_SERVICE_PORT", saved.port],
      ] as const) {
        if (value === undefined) Reflect.deleteProperty(process.env, name);
        else process.env[name] = value;
      }
    }
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error("client-node found no current cluster");
  const options: RequestOptions = {};
  await inDirectory(dir, () => kc.applyToHTTPSOptions(options));
  const proxy = (options.agent as { proxy?: URL } | undefined)?.proxy?.href.replace(/\/$/, "");
  return resolved(cluster.server, options, proxy);
}

async function outcome<T>(load: () => Promise<T>): Promise<{ value: T } | { error: unknown }> {
  try {
    return { value: await load() };
  } catch (error) {
    return { error };
  }
}

describe("loadKubeConfig against client-node's KubeConfig", () => {
  it(`covers at least 25 kubeconfigs (${cases.length})`, () => {
    assert.ok(cases.length >= 25);
  });

  for (const c of cases) {
    it(c.name, async () => {
      const dir = await mkdtemp(join(root, "case-"));
      await writeCase(dir, c);
      const mine = await outcome(() => ours(dir, c));
      const theirs = await outcome(() => clientNode(dir, c));
      const expect = c.expect;
      switch (expect.kind) {
        case "same":
          assert.ok("value" in mine, `we refused: ${"error" in mine ? String(mine.error) : ""}`);
          assert.ok(
            "value" in theirs,
            `client-node refused: ${"error" in theirs ? String(theirs.error) : ""}`,
          );
          assert.deepEqual(mine.value, theirs.value);
          break;
        case "refused":
          assert.ok("error" in mine, "we accepted what client-go refuses");
          assert.ok(mine.error instanceof KubeConfigError, String(mine.error));
          assert.match(mine.error.message, expect.message);
          assert.equal("value" in theirs ? "accepts" : "refuses", expect.clientNode, "client-node's outcome");
          break;
        case "differs":
          assert.ok("value" in mine, `we refused: ${"error" in mine ? String(mine.error) : ""}`);
          for (const [field, value] of Object.entries(expect.ours)) {
            assert.deepEqual(mine.value[field as keyof Resolved], value, `our ${field}`);
          }
          if (expect.clientNode === "refuses") {
            assert.ok("error" in theirs, "client-node accepted it");
          } else {
            assert.ok(
              "value" in theirs,
              `client-node refused: ${"error" in theirs ? String(theirs.error) : ""}`,
            );
            for (const [field, value] of Object.entries(expect.clientNode)) {
              assert.deepEqual(theirs.value[field as keyof Resolved], value, `client-node's ${field}`);
            }
          }
          break;
      }
    });
  }

  it("documents every intended difference in docs/kube-client.md", async () => {
    const doc = await readFile(join(repoRoot, "docs", "kube-client.md"), "utf8");
    for (const c of cases) {
      const documented = c.expect.kind === "same" ? undefined : c.expect.documented;
      if (documented !== undefined)
        assert.ok(doc.includes(`**${documented}**`), `${c.name}: "${documented}"`);
    }
  });
});
