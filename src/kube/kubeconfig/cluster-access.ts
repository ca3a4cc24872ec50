// The connection to one cluster as the REST client and informers use it: server, TLS material, one
// keep-alive pool and the credential each request carries. Replaces client-node's KubeConfig, whose
// import alone costs ~77 MB RSS (its config.js loads every generated model).

import type { Agent as HttpAgent } from "node:http";
import type { RequestOptions } from "node:https";
import { urlToHttpOptions } from "node:url";
import { http as nodeHttp } from "../../node-http.ts";
import {
  Http1Pool,
  IDLE_SOCKET_TIMEOUT_MS,
  type Http1Answer,
  type Http1Request,
  type Http1Target,
  type TlsMaterial,
} from "../http1.ts";
import type { Credential, RequestCredential } from "./credential.ts";
import { TlsPool } from "./tls-pool.ts";

export { IDLE_SOCKET_TIMEOUT_MS };

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
  /**
   * Sends a request whose answer is read whole on the connection's own HTTP/1.1 pool (http1.ts),
   * with its TLS material and credential. Absent where such requests go through node's https: a
   * connection through a proxy, or client-node's KubeConfig.
   */
  readonly exchange?: ((request: Http1Request) => Promise<Http1Answer>) | undefined;
}

export interface Tls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

export interface ClusterSettings {
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
  readonly #pool = new Http1Pool();
  /** The server's protocol, host and port, and a Basic credential from its URL's user part. */
  readonly #endpoint: Pick<Http1Target, "protocol" | "hostname" | "port"> & { basic: string | undefined };
  readonly exchange: ((request: Http1Request) => Promise<Http1Answer>) | undefined;

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
    this.#agent = http ? new nodeHttp.Agent(pool) : new TlsPool({ ...pool, ...tls });
    // As node turns the URL into a request's options: the host without brackets, the user part decoded.
    const { protocol, hostname, port, auth } = urlToHttpOptions(new URL(this.#settings.server));
    this.#endpoint = {
      protocol: protocol ?? "https:",
      hostname: hostname ?? "",
      port: port === undefined || port === "" ? (http ? 80 : 443) : Number(port),
      basic:
        auth === undefined || auth === null ? undefined : `Basic ${Buffer.from(auth).toString("base64")}`,
    };
    // Through a proxy, node's https makes the tunnel.
    this.exchange = proxy === undefined ? (request) => this.#exchange(request) : undefined;
  }

  async #exchange(request: Http1Request): Promise<Http1Answer> {
    const credential = await this.#settings.credential.current();
    const { protocol, hostname, port, basic } = this.#endpoint;
    const authorization = credential.authorization ?? basic;
    const headers = authorization === undefined ? request.headers : { ...request.headers, authorization };
    const target: Http1Target = { protocol, hostname, port, ...this.#tlsWith(credential) };
    const answer = await this.#pool.request(target, { ...request, headers });
    if (answer.status === 401) this.#settings.credential.rejected(credential);
    return answer;
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
    Object.assign(options, this.#tlsWith(credential));
    options.agent = this.#agent;
    const authorization = credential.authorization;
    if (authorization === undefined) return;
    // A new object, so a headers object the caller reuses across requests is left as it was.
    options.headers = isRawHeaders(options.headers)
      ? [...options.headers, "Authorization", authorization]
      : { ...options.headers, Authorization: authorization };
  }

  /**
   * The TLS material of a request: the kubeconfig's, with the credential's client certificate and key
   * where it has them.
   */
  #tlsWith(credential: RequestCredential): TlsMaterial {
    const { ca, cert, key, rejectUnauthorized, servername } = this.#settings.tls;
    const tls: TlsMaterial = { rejectUnauthorized };
    if (ca !== undefined) tls.ca = ca;
    const clientCert = credential.cert ?? cert;
    const clientKey = credential.key ?? key;
    if (clientCert !== undefined) tls.cert = clientCert;
    if (clientKey !== undefined) tls.key = clientKey;
    if (servername !== undefined) tls.servername = servername;
    return tls;
  }

  credentialRejected(options: RequestOptions): void {
    const used = this.#issued.get(options);
    if (used !== undefined) this.#settings.credential.rejected(used);
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#agent.destroy();
    this.#pool.close();
  }
}

function isRawHeaders(headers: RequestOptions["headers"]): headers is readonly string[] {
  return Array.isArray(headers);
}
