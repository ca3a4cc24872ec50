// Cluster connection settings from a kubeconfig file or the in-cluster ServiceAccount, applied to
// node:http(s) requests. Replaces client-node's KubeConfig, whose import alone costs ~77 MB RSS
// (its config.js loads every generated model).

import { execFile, type ExecFileException } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent, type RequestOptions } from "node:https";
import { delimiter, dirname, isAbsolute, join, resolve, sep } from "node:path";
import { parse as parseYaml, YAMLError } from "yaml";
import { systemClock, type Clock } from "./clock.ts";

/**
 * What the informer and REST client need from a cluster connection. client-node's KubeConfig also
 * has this shape, which tests use.
 */
export interface ClusterConnection {
  getCurrentCluster(): { server: string } | null;
  /** Sets TLS material, a shared keep-alive agent and the Authorization header on `options`. */
  applyToHTTPSOptions(options: RequestOptions): Promise<void>;
}

export interface KubeConfigSources {
  /** --kubeconfig flag value, if given. */
  path?: string;
  /**
   * The process environment: KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT
   * are read, and exec credential plugins inherit it. main passes it in.
   */
  env: Record<string, string | undefined>;
  /** The in-cluster ServiceAccount files; default /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir?: string;
}

export interface LoadOptions {
  /** Time for token file re-reads and exec credential expiry; default the system clock. */
  clock?: Clock;
}

/** A kubeconfig that cannot be used. The message names the file, entry and field, never a secret. */
export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
}

/** Token files are re-read this often: kubelet rotates projected ServiceAccount tokens in place. */
export const TOKEN_REREAD_MS = 60_000;
const EXEC_TIMEOUT_MS = 30_000;
/** An exec credential is renewed this long before it expires, so it does not expire in flight. */
const EXEC_RENEW_MARGIN_MS = 10_000;
const EXEC_API_VERSIONS = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"];
const DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

interface Tls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** Produces the Authorization header value; undefined when the user authenticates by certificate only. */
interface Credential {
  authorization(): Promise<string | undefined>;
}

interface ClusterSettings {
  contextName: string;
  clusterName: string;
  server: string;
  tls: Tls;
  credential: Credential;
}

export class ClusterAccess implements ClusterConnection {
  readonly #settings: ClusterSettings;
  // One pool per cluster: a TLS handshake and SecureContext per request is what made client-node slow.
  // No maxSockets: callers bound their concurrency (--write-concurrency), and a cap would queue
  // requests behind long-lived watches.
  readonly #agent: HttpAgent;

  constructor(settings: ClusterSettings) {
    this.#settings = { ...settings, server: settings.server.replace(/\/+$/, "") };
    this.#agent =
      new URL(this.#settings.server).protocol === "http:"
        ? new HttpAgent({ keepAlive: true })
        : new HttpsAgent({ keepAlive: true, ...settings.tls });
  }

  get server(): string {
    return this.#settings.server;
  }

  /** The kubeconfig context in use, or "in-cluster". */
  get currentContext(): string {
    return this.#settings.contextName;
  }

  getCurrentCluster(): { name: string; server: string } {
    return { name: this.#settings.clusterName, server: this.#settings.server };
  }

  async applyToHTTPSOptions(options: RequestOptions): Promise<void> {
    const authorization = await this.#settings.credential.authorization();
    const { ca, cert, key, rejectUnauthorized, servername } = this.#settings.tls;
    if (ca !== undefined) options.ca = ca;
    if (cert !== undefined) options.cert = cert;
    if (key !== undefined) options.key = key;
    if (servername !== undefined) options.servername = servername;
    options.rejectUnauthorized = rejectUnauthorized;
    options.agent = this.#agent;
    if (authorization === undefined) return;
    // A new object, so a headers object the caller reuses across requests is left as it was.
    options.headers = isRawHeaders(options.headers)
      ? [...options.headers, "Authorization", authorization]
      : { ...options.headers, Authorization: authorization };
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#agent.destroy();
  }
}

function isRawHeaders(headers: RequestOptions["headers"]): headers is readonly string[] {
  return Array.isArray(headers);
}

/**
 * Finds the configuration as controller-runtime does: the --kubeconfig path, then KUBECONFIG, then
 * the in-cluster ServiceAccount, then $HOME/.kube/config.
 */
export function loadKubeConfig(sources: KubeConfigSources, options: LoadOptions = {}): ClusterAccess {
  const { env } = sources;
  const clock = options.clock ?? systemClock;
  // --kubeconfig may carry KUBECONFIG's value (the flag reads that variable), so it may be a list.
  if (sources.path?.includes(delimiter) === false) return fromKubeConfigFiles([sources.path], env, clock);
  const from = sources.path === undefined ? "KUBECONFIG" : "--kubeconfig";
  const listed = (sources.path ?? env.KUBECONFIG ?? "").split(delimiter).filter((file) => file !== "");
  if (listed.length > 0) {
    const existing = listed.filter((file) => existsSync(file));
    if (existing.length === 0) {
      throw new KubeConfigError(`none of the files in ${from} exists: ${listed.join(", ")}`);
    }
    return fromKubeConfigFiles(existing, env, clock);
  }
  const tried = ["KUBECONFIG (not set)"];

  const dir = sources.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    tried.push("in-cluster (KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT not set)");
  } else if (!existsSync(join(dir, "token"))) {
    tried.push(`in-cluster (${join(dir, "token")} not found)`);
  } else {
    return inCluster(host, port, dir, clock);
  }

  if (env.HOME) {
    const file = join(env.HOME, ".kube", "config");
    if (existsSync(file)) return fromKubeConfigFiles([file], env, clock);
    tried.push(`${file} (not found)`);
  } else {
    tried.push("$HOME/.kube/config (HOME not set)");
  }
  throw new KubeConfigError(`no Kubernetes configuration found; tried ${tried.join(", ")}`);
}

function inCluster(host: string, port: string, dir: string, clock: Clock): ClusterAccess {
  const where = "in-cluster config";
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return new ClusterAccess({
    contextName: "in-cluster",
    clusterName: "in-cluster",
    server: checkedServer(server, where),
    tls: { ca: readSync(join(dir, "ca.crt"), where), rejectUnauthorized: true },
    credential: new TokenFile(join(dir, "token"), where, clock),
  });
}

type YamlMap = Readonly<Record<string, unknown>>;

/** A clusters/users/contexts entry and the file it came from (for relative paths and messages). */
interface Entry {
  body: YamlMap;
  file: string;
  where: string;
}

interface MergedKubeConfig {
  currentContext: string | undefined;
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  contexts: Map<string, Entry>;
}

const sections = [
  { list: "clusters", item: "cluster", label: "cluster" },
  { list: "users", item: "user", label: "user" },
  { list: "contexts", item: "context", label: "context" },
] as const;

/** Merges the files as kubectl does: the first current-context and the first entry of each name win. */
function fromKubeConfigFiles(
  files: readonly string[],
  env: KubeConfigSources["env"],
  clock: Clock,
): ClusterAccess {
  const merged: MergedKubeConfig = {
    currentContext: undefined,
    clusters: new Map(),
    users: new Map(),
    contexts: new Map(),
  };
  for (const file of files) {
    const where = `kubeconfig ${file}`;
    const doc = parseKubeConfigFile(file, where);
    merged.currentContext ??= text(doc, "current-context", where);
    for (const { list, item, label } of sections) {
      for (const [index, raw] of entries(doc, list, where).entries()) {
        const name = isMap(raw) ? text(raw, "name", where) : undefined;
        if (!isMap(raw) || name === undefined) {
          throw new KubeConfigError(`${where}: ${list}[${index}] has no name`);
        }
        const entryWhere = `${where}: ${label} "${name}"`;
        const body = section(raw, item, entryWhere);
        if (body === undefined) throw new KubeConfigError(`${entryWhere}: ${item} is not set`);
        if (!merged[list].has(name)) merged[list].set(name, { body, file, where: entryWhere });
      }
    }
  }
  return fromMerged(merged, files, env, clock);
}

function fromMerged(
  merged: MergedKubeConfig,
  files: readonly string[],
  env: KubeConfigSources["env"],
  clock: Clock,
): ClusterAccess {
  const where = `kubeconfig ${files.join(", ")}`;
  const contextName = merged.currentContext;
  if (contextName === undefined) throw new KubeConfigError(`${where}: current-context is not set`);
  const context = merged.contexts.get(contextName);
  if (context === undefined) throw new KubeConfigError(`${where}: context "${contextName}" is not defined`);

  const clusterName = text(context.body, "cluster", context.where);
  if (clusterName === undefined) throw new KubeConfigError(`${context.where}: cluster is not set`);
  const cluster = merged.clusters.get(clusterName);
  if (cluster === undefined) {
    throw new KubeConfigError(`${context.where}: cluster "${clusterName}" is not defined`);
  }

  // A context without a user is anonymous; one naming an unknown user is a mistake.
  const userName = text(context.body, "user", context.where);
  const user = userName === undefined ? undefined : merged.users.get(userName);
  if (userName !== undefined && user === undefined) {
    throw new KubeConfigError(`${context.where}: user "${userName}" is not defined`);
  }

  const { server, tls } = clusterSettings(cluster);
  const client = user === undefined ? { credential: noCredential } : userSettings(user, env, clock);
  return new ClusterAccess({
    contextName,
    clusterName,
    server,
    tls: { ...tls, cert: client.cert, key: client.key },
    credential: client.credential,
  });
}

function clusterSettings(cluster: Entry): { server: string; tls: Tls } {
  const { body, where } = cluster;
  if (text(body, "proxy-url", where) !== undefined) {
    throw new KubeConfigError(`${where}: proxy-url is not supported`);
  }
  const server = text(body, "server", where);
  if (server === undefined) throw new KubeConfigError(`${where}: server is not set`);
  const insecure = flag(body, "insecure-skip-tls-verify", where);
  return {
    server: checkedServer(server, where),
    tls: {
      ca: insecure ? undefined : pemField(cluster, "certificate-authority"),
      rejectUnauthorized: !insecure,
      servername: text(body, "tls-server-name", where),
    },
  };
}

function userSettings(
  user: Entry,
  env: KubeConfigSources["env"],
  clock: Clock,
): { cert?: Buffer; key?: Buffer; credential: Credential } {
  const { body, where } = user;
  const authProvider = section(body, "auth-provider", where);
  if (authProvider !== undefined) {
    const name = text(authProvider, "name", where) ?? "(unnamed)";
    throw new KubeConfigError(
      `${where}: auth-provider ${name} is not supported; use an exec credential plugin (e.g. kubelogin)`,
    );
  }
  const cert = pemField(user, "client-certificate");
  const key = pemField(user, "client-key");
  if ((cert === undefined) !== (key === undefined)) {
    throw new KubeConfigError(`${where}: client-certificate and client-key must be set together`);
  }
  return { cert, key, credential: credentialFor(user, env, clock) };
}

function credentialFor(user: Entry, env: KubeConfigSources["env"], clock: Clock): Credential {
  const { body, where } = user;
  const token = text(body, "token", where);
  const tokenFile = text(body, "tokenFile", where);
  const username = text(body, "username", where);
  const password = text(body, "password", where);
  const exec = section(body, "exec", where);
  const basic = username !== undefined || password !== undefined;
  if (basic && (token !== undefined || tokenFile !== undefined)) {
    throw new KubeConfigError(`${where}: set a token or a username and password, not both`);
  }
  // client-go's precedence: tokenFile over token, and any static credential over an exec plugin.
  if (tokenFile !== undefined) {
    return new TokenFile(resolve(dirname(user.file), tokenFile), `${where}: tokenFile`, clock);
  }
  if (token !== undefined) return fixedCredential(`Bearer ${token}`);
  if (basic) {
    const pair = `${username ?? ""}:${password ?? ""}`;
    return fixedCredential(`Basic ${Buffer.from(pair).toString("base64")}`);
  }
  return exec === undefined ? noCredential : new ExecPlugin(execSpec(exec, user, env), clock);
}

const noCredential: Credential = { authorization: () => Promise.resolve(undefined) };

function fixedCredential(authorization: string): Credential {
  return { authorization: () => Promise.resolve(authorization) };
}

/** A bearer token file that may be rotated in place; re-read at most once per TOKEN_REREAD_MS. */
class TokenFile implements Credential {
  readonly #file: string;
  readonly #where: string;
  readonly #clock: Clock;
  #token: string;
  #readAt: number;

  constructor(file: string, where: string, clock: Clock) {
    this.#file = file;
    this.#where = where;
    this.#clock = clock;
    // Read now, so a missing or empty file fails at start rather than on the first request.
    this.#token = this.#checked(readSync(file, where).toString("utf8"));
    this.#readAt = clock.now();
  }

  async authorization(): Promise<string> {
    if (this.#clock.now() - this.#readAt >= TOKEN_REREAD_MS) {
      // Stamped before the read, so requests meanwhile keep the current token instead of reading too.
      this.#readAt = this.#clock.now();
      this.#token = this.#checked(await this.#read());
    }
    return `Bearer ${this.#token}`;
  }

  async #read(): Promise<string> {
    try {
      return await readFile(this.#file, "utf8");
    } catch (err) {
      throw new KubeConfigError(`${this.#where}: cannot read ${this.#file} (${errorCode(err)})`);
    }
  }

  #checked(content: string): string {
    const token = content.trim();
    if (token === "") throw new KubeConfigError(`${this.#where}: ${this.#file} is empty`);
    return token;
  }
}

interface ExecSpec {
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
  apiVersion: string;
  installHint: string | undefined;
  where: string;
}

function execSpec(exec: YamlMap, user: Entry, parentEnv: KubeConfigSources["env"]): ExecSpec {
  const where = `${user.where}: exec`;
  const command = text(exec, "command", where);
  if (command === undefined) throw new KubeConfigError(`${where}: command is not set`);
  const apiVersion = text(exec, "apiVersion", where);
  if (apiVersion === undefined || !EXEC_API_VERSIONS.includes(apiVersion)) {
    throw new KubeConfigError(`${where}: apiVersion must be one of ${EXEC_API_VERSIONS.join(", ")}`);
  }
  const args = entries(exec, "args", where).map((arg, index) => {
    if (typeof arg !== "string") throw new KubeConfigError(`${where}: args[${index}] is not a string`);
    return arg;
  });
  const env: Record<string, string | undefined> = { ...parentEnv };
  for (const [index, variable] of entries(exec, "env", where).entries()) {
    const name = isMap(variable) ? text(variable, "name", where) : undefined;
    if (!isMap(variable) || name === undefined) {
      throw new KubeConfigError(`${where}: env[${index}] has no name`);
    }
    env[name] = text(variable, "value", where) ?? "";
  }
  env.KUBERNETES_EXEC_INFO = JSON.stringify({
    apiVersion,
    kind: "ExecCredential",
    spec: { interactive: false },
  });
  return {
    // A relative path (not a bare name looked up in PATH) is relative to the kubeconfig, as in client-go.
    command: command.includes(sep) && !isAbsolute(command) ? resolve(dirname(user.file), command) : command,
    args,
    env,
    apiVersion,
    installHint: text(exec, "installHint", where),
    where,
  };
}

/** An exec credential plugin; its token is cached until shortly before it expires. */
class ExecPlugin implements Credential {
  readonly #spec: ExecSpec;
  readonly #clock: Clock;
  #cached: { token: string; renewAt: number } | undefined;
  #running: Promise<string> | undefined;

  constructor(spec: ExecSpec, clock: Clock) {
    this.#spec = spec;
    this.#clock = clock;
  }

  async authorization(): Promise<string> {
    const cached = this.#cached;
    if (cached !== undefined && this.#clock.now() < cached.renewAt) return `Bearer ${cached.token}`;
    // One run serves every request that needs a token while it is under way.
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return `Bearer ${await this.#running}`;
  }

  async #run(): Promise<string> {
    const { token, expiresAt } = parseExecCredential(await runPlugin(this.#spec), this.#spec);
    this.#cached = { token, renewAt: expiresAt - EXEC_RENEW_MARGIN_MS };
    return token;
  }
}

function runPlugin(spec: ExecSpec): Promise<string> {
  return new Promise((resolveOutput, reject) => {
    const child = execFile(
      spec.command,
      spec.args,
      { env: spec.env, timeout: EXEC_TIMEOUT_MS, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err === null) {
          resolveOutput(stdout);
          return;
        }
        // stdout holds the credential, so only stderr's first line goes into the message.
        const excerpt = stderr.trim().split("\n", 1)[0]?.trim().slice(0, 200) ?? "";
        const detail = `${execFailure(err, spec)}${excerpt === "" ? "" : `: ${excerpt}`}`;
        reject(new KubeConfigError(`${spec.where}: ${spec.command} ${detail}`));
      },
    );
    // Plugins run non-interactively; a closed stdin stops one that prompts from waiting forever.
    child.stdin?.end();
  });
}

function execFailure(err: ExecFileException, spec: ExecSpec): string {
  if (err.code === "ENOENT") {
    return spec.installHint === undefined ? "was not found" : `was not found (${spec.installHint.trim()})`;
  }
  if (typeof err.code === "number") return `exited with code ${err.code}`;
  if (typeof err.code === "string") return `failed (${err.code})`;
  if (err.killed === true) return `did not finish within ${EXEC_TIMEOUT_MS / 1000} s`;
  if (err.signal) return `was killed by ${err.signal}`;
  return "failed";
}

function parseExecCredential(stdout: string, spec: ExecSpec): { token: string; expiresAt: number } {
  const where = `${spec.where}: ${spec.command}`;
  let credential: unknown;
  try {
    credential = JSON.parse(stdout);
  } catch (err) {
    // V8's SyntaxError quotes the input, which is the credential.
    if (!(err instanceof SyntaxError)) throw err;
    throw new KubeConfigError(`${where} printed something that is not JSON`);
  }
  if (!isMap(credential) || credential.kind !== "ExecCredential") {
    throw new KubeConfigError(`${where} did not print an ExecCredential`);
  }
  if (credential.apiVersion !== spec.apiVersion) {
    throw new KubeConfigError(`${where} did not answer in ${spec.apiVersion}`);
  }
  const status = credential.status;
  if (!isMap(status)) throw new KubeConfigError(`${where} returned no status`);
  if (status.clientCertificateData !== undefined) {
    throw new KubeConfigError(`${where}: exec plugins that return client certificates are not supported`);
  }
  if (typeof status.token !== "string" || status.token === "") {
    throw new KubeConfigError(`${where} returned no status.token`);
  }
  const expiry = status.expirationTimestamp;
  if (expiry === undefined || expiry === null) return { token: status.token, expiresAt: Infinity };
  const expiresAt = typeof expiry === "string" ? Date.parse(expiry) : NaN;
  if (Number.isNaN(expiresAt)) {
    throw new KubeConfigError(`${where} returned a status.expirationTimestamp that is not a time`);
  }
  return { token: status.token, expiresAt };
}

function checkedServer(server: string, where: string): string {
  const protocol = URL.canParse(server) ? new URL(server).protocol : undefined;
  if (protocol !== "https:" && protocol !== "http:") {
    throw new KubeConfigError(`${where}: server is not an https:// or http:// URL`);
  }
  return server;
}

function parseKubeConfigFile(file: string, where: string): YamlMap {
  const source = readSync(file, where).toString("utf8");
  let doc: unknown;
  try {
    // Every scalar is read as a string, as client-go's type-directed decoding does, so a password
    // like 0123 stays as written.
    doc = parseYaml(source, { schema: "failsafe", logLevel: "error" });
  } catch (err) {
    if (!(err instanceof YAMLError)) throw err;
    // The parser's message quotes the offending line, which may hold a token.
    const at = err.linePos?.[0];
    throw new KubeConfigError(`${where}: not valid YAML${at ? ` (line ${at.line}, column ${at.col})` : ""}`);
  }
  if (doc === null) return {};
  if (!isMap(doc)) throw new KubeConfigError(`${where}: not a kubeconfig (the top level is not a map)`);
  return doc;
}

/** PEM from `<field>-data` (base64) or the file named by `<field>`; data wins, as in client-go. */
function pemField(entry: Entry, field: string): Buffer | undefined {
  const data = text(entry.body, `${field}-data`, entry.where);
  if (data !== undefined) return Buffer.from(data, "base64");
  const file = text(entry.body, field, entry.where);
  return file === undefined
    ? undefined
    : readSync(resolve(dirname(entry.file), file), `${entry.where}: ${field}`);
}

function readSync(file: string, where: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new KubeConfigError(`${where}: cannot read ${file} (${errorCode(err)})`);
  }
}

function errorCode(err: unknown): string {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : "unknown error";
}

function isMap(value: unknown): value is YamlMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** YAML nulls, which the failsafe schema leaves as text; client-go reads them, and "", as unset. */
const nullScalars = new Set(["", "~", "null", "Null", "NULL"]);

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "string" && nullScalars.has(value));
}

function text(map: YamlMap, field: string, where: string): string | undefined {
  const value = map[field];
  if (isUnset(value)) return undefined;
  if (typeof value !== "string") throw new KubeConfigError(`${where}: ${field} is not a string`);
  return value;
}

function flag(map: YamlMap, field: string, where: string): boolean {
  const value = text(map, field, where)?.toLowerCase();
  if (value === undefined || value === "false") return false;
  if (value === "true") return true;
  throw new KubeConfigError(`${where}: ${field} is not true or false`);
}

function section(map: YamlMap, field: string, where: string): YamlMap | undefined {
  const value = map[field];
  if (isUnset(value)) return undefined;
  if (!isMap(value)) throw new KubeConfigError(`${where}: ${field} is not a map`);
  return value;
}

function entries(map: YamlMap, field: string, where: string): readonly unknown[] {
  const value = map[field];
  if (isUnset(value)) return [];
  if (!Array.isArray(value)) throw new KubeConfigError(`${where}: ${field} is not a list`);
  return value as unknown[];
}
