// An exec credential plugin (client.authentication.k8s.io v1 and v1beta1): its kubeconfig section
// checked as client-go validates it, and the plugin run as client-go runs it: non-interactively,
// with KUBERNETES_EXEC_INFO (and the cluster when provideClusterInfo is set), its token or client
// certificate cached until it expires or the server answers 401.
import { execFile, type ExecFileException } from "node:child_process";
import { dirname, isAbsolute, resolve, sep } from "node:path";
import type { Clock } from "../../clock.ts";
import type { Credential, RequestCredential } from "./credential.ts";
import { KubeConfigError } from "./kubeconfig-error.ts";
import { entries, flag, isMap, text, type Entry, type YamlMap } from "./yaml-fields.ts";

const EXEC_API_VERSIONS = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"];
const EXEC_TIMEOUT_MS = 30_000;
/** A credential is renewed this long before it expires, so it does not expire in flight. */
const EXEC_RENEW_MARGIN_MS = 10_000;

/** The `spec.cluster` a plugin receives with provideClusterInfo, in client-go's JSON field names. */
export interface ExecClusterInfo {
  server: string;
  "tls-server-name"?: string;
  "insecure-skip-tls-verify"?: boolean;
  /** Base64 of the CA bundle, whether the kubeconfig gave it as data or as a file. */
  "certificate-authority-data"?: string;
  "proxy-url"?: string;
  "disable-compression"?: boolean;
  /** The cluster's `client.authentication.k8s.io/exec` extension. */
  config?: unknown;
}

export interface ExecConfig {
  command: string;
  args: string[];
  /** The whole environment of the plugin: the operator's, then the kubeconfig's `env`. */
  env: Record<string, string | undefined>;
  apiVersion: string;
  installHint: string | undefined;
  /** Set when provideClusterInfo is true. */
  cluster: ExecClusterInfo | undefined;
  /** Where in the kubeconfig, for messages. */
  where: string;
}

const interactiveModes = ["Never", "IfAvailable", "Always"];

/** The exec section of `user`, checked as client-go validates it. */
export function execConfig(
  exec: YamlMap,
  user: Entry,
  clusterInfo: ExecClusterInfo,
  parentEnv: Readonly<Record<string, string | undefined>>,
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
    cluster: flag(exec, "provideClusterInfo", where) ? clusterInfo : undefined,
    where,
  };
}

interface Cached {
  credential: RequestCredential;
  renewAt: number;
}

export class ExecPlugin implements Credential {
  readonly #config: ExecConfig;
  readonly #clock: Clock;
  #cached: Cached | undefined;
  #running: Promise<RequestCredential> | undefined;

  constructor(config: ExecConfig, clock: Clock) {
    this.#config = config;
    this.#clock = clock;
  }

  current(): Promise<RequestCredential> {
    const cached = this.#cached;
    if (cached !== undefined && this.#clock.now() < cached.renewAt) return Promise.resolve(cached.credential);
    // One run serves every request that needs a credential while it is under way.
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Drops the credential the server refused, unless a newer one replaced it already (as client-go). */
  rejected(used: RequestCredential): void {
    if (this.#cached?.credential === used) this.#cached = undefined;
  }

  async #run(): Promise<RequestCredential> {
    const startedAt = this.#clock.now();
    const { credential, expiresAt } = parseExecCredential(await runPlugin(this.#config), this.#config);
    this.#cached = { credential, renewAt: renewAt(startedAt, expiresAt) };
    return credential;
  }
}

/**
 * When to run the plugin again: EXEC_RENEW_MARGIN_MS before expiry, or halfway through a lifetime
 * shorter than twice that margin, so a short-lived credential is not fetched anew on every request.
 */
function renewAt(now: number, expiresAt: number): number {
  const lifetime = expiresAt - now;
  return now + (lifetime > 2 * EXEC_RENEW_MARGIN_MS ? lifetime - EXEC_RENEW_MARGIN_MS : lifetime / 2);
}

/** The KUBERNETES_EXEC_INFO value: the ExecCredential the plugin is asked to complete. */
function execInfo(config: Pick<ExecConfig, "apiVersion" | "cluster">): string {
  const spec =
    config.cluster === undefined ? { interactive: false } : { cluster: config.cluster, interactive: false };
  return JSON.stringify({ apiVersion: config.apiVersion, kind: "ExecCredential", spec });
}

function runPlugin(config: ExecConfig): Promise<string> {
  const env = { ...config.env, KUBERNETES_EXEC_INFO: execInfo(config) };
  return new Promise((resolveOutput, reject) => {
    const child = execFile(
      config.command,
      config.args,
      { env, timeout: EXEC_TIMEOUT_MS, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err === null) {
          resolveOutput(stdout);
          return;
        }
        // stdout holds the credential, so only stderr's first line goes into the message.
        const excerpt = stderr.trim().split("\n", 1)[0]?.trim().slice(0, 200) ?? "";
        const detail = `${execFailure(err, config)}${excerpt === "" ? "" : `: ${excerpt}`}`;
        reject(new KubeConfigError(`${config.where}: ${config.command} ${detail}`));
      },
    );
    // Plugins run non-interactively; a closed stdin stops one that prompts from waiting forever.
    child.stdin?.end();
  });
}

function execFailure(err: ExecFileException, config: ExecConfig): string {
  if (err.code === "ENOENT") {
    return config.installHint === undefined
      ? "was not found"
      : `was not found (${config.installHint.trim()})`;
  }
  if (typeof err.code === "number") return `exited with code ${err.code}`;
  if (typeof err.code === "string") return `failed (${err.code})`;
  if (err.killed === true) return `did not finish within ${EXEC_TIMEOUT_MS / 1000} s`;
  if (err.signal) return `was killed by ${err.signal}`;
  return "failed";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalText(status: Record<string, unknown>, field: string, where: string): string | undefined {
  const value = status[field];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string")
    throw new KubeConfigError(`${where} returned a status.${field} that is not a string`);
  return value;
}

function parseExecCredential(
  stdout: string,
  config: Pick<ExecConfig, "apiVersion" | "command" | "where">,
): { credential: RequestCredential; expiresAt: number } {
  const where = `${config.where}: ${config.command}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (err) {
    // V8's SyntaxError quotes the input, which is the credential.
    if (!(err instanceof SyntaxError)) throw err;
    throw new KubeConfigError(`${where} printed something that is not JSON`);
  }
  if (!isRecord(parsed) || parsed.kind !== "ExecCredential") {
    throw new KubeConfigError(`${where} did not print an ExecCredential`);
  }
  if (parsed.apiVersion !== config.apiVersion) {
    throw new KubeConfigError(`${where} did not answer in ${config.apiVersion}`);
  }
  const status = parsed.status;
  if (!isRecord(status)) throw new KubeConfigError(`${where} returned no status`);
  const token = optionalText(status, "token", where);
  const cert = optionalText(status, "clientCertificateData", where);
  const key = optionalText(status, "clientKeyData", where);
  if ((cert === undefined) !== (key === undefined)) {
    throw new KubeConfigError(`${where} returned clientCertificateData and clientKeyData, but not both`);
  }
  if (token === undefined && cert === undefined) {
    throw new KubeConfigError(`${where} returned neither a token nor a client certificate and key`);
  }
  const credential: RequestCredential = {};
  if (token !== undefined) credential.authorization = `Bearer ${token}`;
  if (cert !== undefined && key !== undefined) {
    credential.cert = cert;
    credential.key = key;
  }
  // Without an expiry the credential is kept until the server refuses it (401), as client-go does.
  const expiry = status.expirationTimestamp;
  if (expiry === undefined || expiry === null) return { credential, expiresAt: Infinity };
  const expiresAt = typeof expiry === "string" ? Date.parse(expiry) : NaN;
  if (Number.isNaN(expiresAt)) {
    throw new KubeConfigError(`${where} returned a status.expirationTimestamp that is not a time`);
  }
  return { credential, expiresAt };
}
