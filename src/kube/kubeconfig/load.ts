// Cluster connection settings from a kubeconfig file or the in-cluster ServiceAccount, applied to
// node:http(s) requests. Replaces client-node's KubeConfig, whose import alone costs ~77 MB RSS
// (its config.js loads every generated model).

import { existsSync, readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent, type RequestOptions } from "node:https";
import { delimiter, dirname, isAbsolute, join, resolve, sep } from "node:path";
import { parse as parseYaml, YAMLError } from "yaml";
import { systemClock, type Clock } from "../../clock.ts";
import {
  errorCode,
  fixedCredential,
  KubeConfigError,
  noCredential,
  TokenFile,
  type Credential,
  type RequestCredential,
} from "./credential.ts";
import { EXEC_API_VERSIONS, ExecPlugin, type ExecClusterInfo, type ExecConfig } from "./exec-plugin.ts";
import { parseProxyUrl, proxyFor } from "./proxy.ts";

export { KubeConfigError } from "./credential.ts";
export { TOKEN_REREAD_MS } from "./credential.ts";

/**
 * What the informer and REST client need from a cluster connection. client-node's KubeConfig also
 * has this shape, which tests use.
 */
export interface ClusterConnection {
  getCurrentCluster(): { server: string } | null;
  /** Sets TLS material, a shared keep-alive agent and the Authorization header on `options`. */
  applyToHTTPSOptions(options: RequestOptions): Promise<void>;
  /**
   * The server answered 401 Unauthorized to the request `options` was prepared for: an exec
   * plugin's credential is dropped, so the next request runs the plugin again (as client-go does).
   */
  credentialRejected?(options: RequestOptions): void;
}

export interface KubeConfigSources {
  /** --kubeconfig flag value, if given. */
  path?: string;
  /**
   * The process environment: KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT and
   * the proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are read, and exec credential plugins
   * inherit it. main passes it in.
   */
  env: Record<string, string | undefined>;
  /** The in-cluster ServiceAccount files; default /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir?: string;
}

export interface LoadOptions {
  /** Time for token file re-reads and exec credential expiry; default the system clock. */
  clock?: Clock;
}

/**
 * Pooled connections idle longer than this are closed by the client, well before the API server's
 * 90 s idle timeout, so a request never goes out on a socket the server is closing (ECONNRESET).
 */
export const IDLE_SOCKET_TIMEOUT_MS = 30_000;
const DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const EXEC_EXTENSION = "client.authentication.k8s.io/exec";

interface Tls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

interface ClusterSettings {
  contextName: string;
  clusterName: string;
  server: string;
  tls: Tls;
  credential: Credential;
  /** The proxy every connection goes through, if any. */
  proxy: URL | undefined;
}

export class ClusterAccess implements ClusterConnection {
  readonly #settings: ClusterSettings;
  // One pool per cluster: a TLS handshake and SecureContext per request is what made client-node slow.
  // No maxSockets: callers bound their concurrency (--write-concurrency), and a cap would queue
  // requests behind long-lived watches.
  readonly #agent: HttpAgent;

  /** The credential each prepared request carried, to know which one a 401 refused. */
  readonly #issued = new WeakMap<RequestOptions, RequestCredential>();

  constructor(settings: ClusterSettings) {
    this.#settings = { ...settings, server: settings.server.replace(/\/+$/, "") };
    const http = new URL(this.#settings.server).protocol === "http:";
    const proxy = settings.proxy?.href;
    const proxyEnv = proxy === undefined ? undefined : http ? { HTTP_PROXY: proxy } : { HTTPS_PROXY: proxy };
    const pool = { keepAlive: true, timeout: IDLE_SOCKET_TIMEOUT_MS, proxyEnv };
    // Only the fields that are set: an agent's options override each request's, and a client
    // certificate from an exec plugin comes with the request.
    const tls = Object.fromEntries(Object.entries(settings.tls).filter(([, value]) => value !== undefined));
    this.#agent = http ? new HttpAgent(pool) : new HttpsAgent({ ...pool, ...tls });
  }

  /** The proxy in use, or undefined for direct connections. */
  get proxy(): URL | undefined {
    return this.#settings.proxy;
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
    const credential = await this.#settings.credential.current();
    this.#issued.set(options, credential);
    const { ca, cert, key, rejectUnauthorized, servername } = this.#settings.tls;
    if (ca !== undefined) options.ca = ca;
    const clientCert = credential.cert ?? cert;
    const clientKey = credential.key ?? key;
    if (clientCert !== undefined) options.cert = clientCert;
    if (clientKey !== undefined) options.key = clientKey;
    if (servername !== undefined) options.servername = servername;
    options.rejectUnauthorized = rejectUnauthorized;
    options.agent = this.#agent;
    const authorization = credential.authorization;
    if (authorization === undefined) return;
    // A new object, so a headers object the caller reuses across requests is left as it was.
    options.headers = isRawHeaders(options.headers)
      ? [...options.headers, "Authorization", authorization]
      : { ...options.headers, Authorization: authorization };
  }

  credentialRejected(options: RequestOptions): void {
    const used = this.#issued.get(options);
    if (used !== undefined) this.#settings.credential.rejected(used);
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
    return inCluster(host, port, dir, env, clock);
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

function inCluster(
  host: string,
  port: string,
  dir: string,
  env: KubeConfigSources["env"],
  clock: Clock,
): ClusterAccess {
  const where = "in-cluster config";
  const server = checkedServer(`https://${host.includes(":") ? `[${host}]` : host}:${port}`, where);
  return new ClusterAccess({
    contextName: "in-cluster",
    clusterName: "in-cluster",
    server,
    tls: { ca: readSync(join(dir, "ca.crt"), where), rejectUnauthorized: true },
    credential: new TokenFile(join(dir, "token"), where, clock),
    proxy: proxyFor(new URL(server), undefined, env),
  });
}

type YamlMap = Readonly<Record<string, unknown>>;

/** A clusters/users/contexts entry and the file it came from (for relative paths and messages). */
interface Entry {
  body: YamlMap;
  /** The same entry with YAML's own types (numbers, booleans), for an exec extension's config. */
  typed: YamlMap | undefined;
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

/**
 * Merges the files as kubectl does: the first current-context and the first entry of each name win;
 * within one file a name may appear only once.
 */
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
    const { doc, typed } = parseKubeConfigFile(file, where);
    merged.currentContext ??= text(doc, "current-context", where);
    for (const { list, item, label } of sections) {
      const typedEntries = typed === undefined ? [] : entriesOrNone(typed, list);
      const seen = new Set<string>();
      for (const [index, raw] of entries(doc, list, where).entries()) {
        const name = isMap(raw) ? text(raw, "name", where) : undefined;
        if (!isMap(raw) || name === undefined) {
          throw new KubeConfigError(`${where}: ${list}[${index}] has no name`);
        }
        if (seen.has(name))
          throw new KubeConfigError(`${where}: ${list} has more than one entry named "${name}"`);
        seen.add(name);
        const entryWhere = `${where}: ${label} "${name}"`;
        const body = section(raw, item, entryWhere);
        if (body === undefined) throw new KubeConfigError(`${entryWhere}: ${item} is not set`);
        const typedRaw = typedEntries[index];
        const typedBody = isMap(typedRaw) && isMap(typedRaw[item]) ? typedRaw[item] : undefined;
        if (!merged[list].has(name))
          merged[list].set(name, { body, typed: typedBody, file, where: entryWhere });
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

  const settings = clusterSettings(cluster);
  const client = user === undefined ? { credential: noCredential } : userSettings(user, settings, env, clock);
  // client-go reads a user's credentials only for an https:// server: none go out in clear text.
  const secure = new URL(settings.server).protocol === "https:";
  return new ClusterAccess({
    contextName,
    clusterName,
    server: settings.server,
    tls: secure ? { ...settings.tls, cert: client.cert, key: client.key } : { rejectUnauthorized: true },
    credential: secure ? client.credential : noCredential,
    proxy: proxyFor(new URL(settings.server), settings.proxyUrl, env),
  });
}

interface ResolvedCluster {
  server: string;
  tls: Tls;
  proxyUrl: URL | undefined;
  /** What an exec plugin with provideClusterInfo receives. */
  execInfo: ExecClusterInfo;
}

function clusterSettings(cluster: Entry): ResolvedCluster {
  const { body, where } = cluster;
  const written = text(body, "server", where);
  if (written === undefined) throw new KubeConfigError(`${where}: server is not set`);
  const insecure = flag(body, "insecure-skip-tls-verify", where);
  const ca = pemField(cluster, "certificate-authority");
  if (insecure && ca !== undefined) {
    throw new KubeConfigError(
      `${where}: certificate-authority and insecure-skip-tls-verify are both set; client-go refuses a CA with the insecure flag`,
    );
  }
  const proxyText = text(body, "proxy-url", where);
  const proxyUrl = proxyText === undefined ? undefined : parseProxyUrl(proxyText, where);
  const servername = text(body, "tls-server-name", where);
  const server = checkedServer(withScheme(written), where);
  const execInfo: ExecClusterInfo = { server };
  if (servername !== undefined) execInfo["tls-server-name"] = servername;
  if (insecure) execInfo["insecure-skip-tls-verify"] = true;
  if (ca !== undefined) execInfo["certificate-authority-data"] = ca.toString("base64");
  if (proxyText !== undefined) execInfo["proxy-url"] = proxyText;
  if (flag(body, "disable-compression", where)) execInfo["disable-compression"] = true;
  const extension = execExtension(cluster);
  if (extension !== undefined) execInfo.config = extension;
  return { server, tls: { ca, rejectUnauthorized: !insecure, servername }, proxyUrl, execInfo };
}

/**
 * A server without a scheme is taken as https://, as the kubeconfig's users mean it (client-go's
 * clientcmd would make it http:// and then send no credentials, which no API server accepts).
 */
function withScheme(server: string): string {
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(server) ? server : `https://${server}`;
}

/** The cluster's `extensions` entry for exec plugins, with YAML's types, as client-go passes it on. */
function execExtension(cluster: Entry): unknown {
  const list = cluster.typed === undefined ? [] : entriesOrNone(cluster.typed, "extensions");
  for (const item of list) {
    if (isMap(item) && item.name === EXEC_EXTENSION) return item.extension;
  }
  return undefined;
}

function userSettings(
  user: Entry,
  cluster: ResolvedCluster,
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
  return { cert, key, credential: credentialFor(user, cert !== undefined, cluster, env, clock) };
}

function credentialFor(
  user: Entry,
  hasClientCertificate: boolean,
  cluster: ResolvedCluster,
  env: KubeConfigSources["env"],
  clock: Clock,
): Credential {
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
  // Checked even when a static credential makes the plugin unused, as client-go validates it too.
  const plugin = exec === undefined ? undefined : execConfig(exec, user, cluster, env);
  // client-go's precedence: tokenFile over token, and any static credential (a client certificate
  // included) over an exec plugin.
  if (tokenFile !== undefined) {
    return new TokenFile(resolve(dirname(user.file), tokenFile), `${where}: tokenFile`, clock);
  }
  if (token !== undefined) return fixedCredential(`Bearer ${token}`);
  if (basic) {
    const pair = `${username ?? ""}:${password ?? ""}`;
    return fixedCredential(`Basic ${Buffer.from(pair).toString("base64")}`);
  }
  if (hasClientCertificate || plugin === undefined) return noCredential;
  return new ExecPlugin(plugin, clock);
}

const interactiveModes = ["Never", "IfAvailable", "Always"];

function execConfig(
  exec: YamlMap,
  user: Entry,
  cluster: ResolvedCluster,
  parentEnv: KubeConfigSources["env"],
): ExecConfig {
  const where = `${user.where}: exec`;
  const command = text(exec, "command", where);
  if (command === undefined) throw new KubeConfigError(`${where}: command is not set`);
  const apiVersion = text(exec, "apiVersion", where);
  if (apiVersion === undefined || !EXEC_API_VERSIONS.includes(apiVersion)) {
    throw new KubeConfigError(`${where}: apiVersion must be one of ${EXEC_API_VERSIONS.join(", ")}`);
  }
  // v1beta1 defaults to IfAvailable; v1 must say (client-go's defaulting and validation).
  const mode =
    text(exec, "interactiveMode", where) ?? (apiVersion.endsWith("/v1beta1") ? "IfAvailable" : undefined);
  if (mode === undefined)
    throw new KubeConfigError(`${where}: interactiveMode must be set for ${apiVersion}`);
  if (!interactiveModes.includes(mode)) {
    throw new KubeConfigError(`${where}: interactiveMode must be one of ${interactiveModes.join(", ")}`);
  }
  if (mode === "Always") {
    throw new KubeConfigError(
      `${where}: interactiveMode is Always, but the operator has no terminal; use IfAvailable or Never`,
    );
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
  return {
    // A relative path (not a bare name looked up in PATH) is relative to the kubeconfig, as in client-go.
    command: command.includes(sep) && !isAbsolute(command) ? resolve(dirname(user.file), command) : command,
    args,
    env,
    apiVersion,
    installHint: text(exec, "installHint", where),
    cluster: flag(exec, "provideClusterInfo", where) ? cluster.execInfo : undefined,
    where,
  };
}

function checkedServer(server: string, where: string): string {
  const url = URL.canParse(server) ? new URL(server) : undefined;
  if ((url?.protocol !== "https:" && url?.protocol !== "http:") || url.hostname === "") {
    throw new KubeConfigError(`${where}: server is not an https:// or http:// URL`);
  }
  return server;
}

function parseKubeConfigFile(file: string, where: string): { doc: YamlMap; typed: YamlMap | undefined } {
  const source = readSync(file, where).toString("utf8");
  let doc: unknown;
  let typed: unknown;
  try {
    // Every scalar is read as a string, as client-go's type-directed decoding does, so a password
    // like 0123 stays as written. The typed reading serves only extensions, which are free-form.
    doc = parseYaml(source, { schema: "failsafe", logLevel: "error" });
    typed = parseYaml(source, { logLevel: "error" });
  } catch (err) {
    if (!(err instanceof YAMLError)) throw err;
    // The parser's message quotes the offending line, which may hold a token.
    const at = err.linePos?.[0];
    throw new KubeConfigError(`${where}: not valid YAML${at ? ` (line ${at.line}, column ${at.col})` : ""}`);
  }
  if (doc === null) return { doc: {}, typed: undefined };
  if (!isMap(doc)) throw new KubeConfigError(`${where}: not a kubeconfig (the top level is not a map)`);
  return { doc, typed: isMap(typed) ? typed : undefined };
}

/** PEM from `<field>-data` (base64) or the file named by `<field>`; data wins, as in client-go. */
function pemField(entry: Entry, field: string): Buffer | undefined {
  const data = text(entry.body, `${field}-data`, entry.where);
  if (data !== undefined) return strictBase64(data, `${entry.where}: ${field}-data`);
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

/**
 * Base64 as Go's encoding/json decodes []byte (standard alphabet, padded; line breaks ignored), so
 * a value client-go refuses fails here at load instead of later in TLS.
 */
function strictBase64(data: string, where: string): Buffer {
  const compact = data.replace(/[\r\n]/g, "");
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
    throw new KubeConfigError(`${where} is not valid base64`);
  }
  return Buffer.from(compact, "base64");
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

/** A list field as it is, or none when it is missing or not a list (for the typed reading). */
function entriesOrNone(map: YamlMap, field: string): readonly unknown[] {
  const value = map[field];
  return Array.isArray(value) ? (value as unknown[]) : [];
}

function entries(map: YamlMap, field: string, where: string): readonly unknown[] {
  const value = map[field];
  if (isUnset(value)) return [];
  if (!Array.isArray(value)) throw new KubeConfigError(`${where}: ${field} is not a list`);
  return value as unknown[];
}
