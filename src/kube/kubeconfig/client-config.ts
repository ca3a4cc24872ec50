// From the merged kubeconfig to a cluster connection, as client-go's clientcmd builds its client
// config: the current context's cluster (server, TLS, proxy) and user (client certificate, token,
// token file, Basic or exec plugin).

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Clock } from "../../clock.ts";
import { ClusterAccess, type Tls } from "./cluster-access.ts";
import { fixedCredential, noCredential, type Credential } from "./credential.ts";
import { execConfig, ExecPlugin, type ExecClusterInfo } from "./exec-plugin.ts";
import { errorCode, KubeConfigError } from "./kubeconfig-error.ts";
import { parseProxyUrl, proxyFor } from "./proxy.ts";
import { TokenFile } from "./token-file.ts";
import { entriesOrNone, flag, isMap, section, text, type Entry } from "./yaml-fields.ts";

/** The kubeconfig files merged: the first current-context and the first entry of each name. */
export interface MergedKubeConfig {
  currentContext: string | undefined;
  clusters: Map<string, Entry>;
  users: Map<string, Entry>;
  contexts: Map<string, Entry>;
}

const EXEC_EXTENSION = "client.authentication.k8s.io/exec";

/** The connection the current context describes: its cluster, with its user's credentials. */
export function fromMerged(
  merged: MergedKubeConfig,
  files: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
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
  env: Readonly<Record<string, string | undefined>>,
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
  env: Readonly<Record<string, string | undefined>>,
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
  const plugin = exec === undefined ? undefined : execConfig(exec, user, cluster.execInfo, env);
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

/** `server` when it is an http:// or https:// URL with a host. */
export function checkedServer(server: string, where: string): string {
  const url = URL.canParse(server) ? new URL(server) : undefined;
  if ((url?.protocol !== "https:" && url?.protocol !== "http:") || url.hostname === "") {
    throw new KubeConfigError(`${where}: server is not an https:// or http:// URL`);
  }
  return server;
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

/** A file the kubeconfig names, read at load so a missing one fails at start. */
export function readSync(file: string, where: string): Buffer {
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
