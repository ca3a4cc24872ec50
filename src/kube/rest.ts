// JSON requests to the API server over the connection's keep-alive pool. The operator sends a
// handful of request shapes (create, merge patch, replace, get, list, delete, watch); this client
// does them without client-node's generated layer, whose models alone cost about 77 MB of memory
// and a sixth of the CPU of a converge.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { urlToHttpOptions } from "node:url";
import { systemClock, type Clock } from "../clock.ts";
import { http } from "../node-http.ts";
import { classifyKubeError, KubeError } from "./errors.ts";
import { closedEarly } from "./http1.ts";
import type { ClusterConnection } from "./kubeconfig/cluster-access.ts";

export type Query = Record<string, string | number | boolean | undefined> | URLSearchParams;

export interface KubeClientOptions {
  /** A request that has not answered within this time is aborted as Unavailable. */
  timeoutMs?: number;
  userAgent?: string;
  /** A 429, or a 5xx with Retry-After, is retried after the time the server asks, up to this long; default 10 s. */
  maxRetryAfterMs?: number;
  /** Retries of one request on Retry-After; default 3. Past them the caller's backoff takes over. */
  maxRetryAfterRetries?: number;
  /** Time for the Retry-After waits; default the system clock. */
  clock?: Clock;
}

const mergePatchType = "application/merge-patch+json";
/** Asks for objects' metadata alone (in an answer or a watch), or whole objects where that cannot be. */
export const metadataOnly = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json";
/** The same for a list, whose items then come as PartialObjectMetadata. */
export const metadataListOnly =
  "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json";

/** An answer that carries an object's metadata: PartialObjectMetadata, or the object itself. */
export interface ObjectWithMetadata {
  metadata?: V1ObjectMeta;
}
const defaultTimeoutMs = 30_000;
const defaultMaxRetryAfterMs = 10_000;
const defaultMaxRetryAfterRetries = 3;

/** The path of a namespaced collection or object, with each segment escaped. */
export function namespacedPath(prefix: string, namespace: string, plural: string, name?: string): string {
  const base = `${prefix}/namespaces/${encodeURIComponent(namespace)}/${plural}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

/** The path of a cluster-scoped object (or its subresource). */
export function clusterPath(prefix: string, plural: string, name: string, subresource?: string): string {
  const base = `${prefix}/${plural}/${encodeURIComponent(name)}`;
  return subresource === undefined ? base : `${base}/${subresource}`;
}

/**
 * A path a URL would leave as it is: only a URL path's characters (no query or fragment), and no
 * "." or ".." segment.
 */
function isPlainPath(path: string): boolean {
  return /^\/[\w\-.~!$&'()*+,;=:@%/]*$/.test(path) && !/\/\.\.?(?:\/|$)/.test(path);
}

/** The parts of the server's URL a request is sent to. */
interface Endpoint {
  server: string;
  protocol: string;
  hostname: string;
  port: string | number | undefined;
  auth: string | undefined;
  /** The URL's path without trailing slashes: "" for a server at the root. */
  pathPrefix: string;
}

function endpointOf(server: string): Endpoint {
  const url = new URL(server);
  const { protocol, hostname, port, auth } = urlToHttpOptions(url);
  return {
    server,
    protocol: protocol ?? "https:",
    hostname: hostname ?? "",
    port: port ?? undefined,
    auth: auth ?? undefined,
    pathPrefix: url.pathname.replace(/\/+$/, ""),
  };
}

export class KubeClient {
  readonly connection: ClusterConnection;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly maxRetryAfterMs: number;
  private readonly maxRetryAfterRetries: number;
  private readonly clock: Clock;
  /** The current server's URL, parsed. */
  private endpoint: Endpoint | undefined;

  constructor(connection: ClusterConnection, options: KubeClientOptions = {}) {
    this.connection = connection;
    this.timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    this.userAgent = options.userAgent ?? "ecr-creds-refresher";
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? defaultMaxRetryAfterMs;
    this.maxRetryAfterRetries = options.maxRetryAfterRetries ?? defaultMaxRetryAfterRetries;
    this.clock = options.clock ?? systemClock;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.send<T>("GET", path, query);
  }

  /**
   * Creates the object and returns the metadata the API server stored for it (as
   * PartialObjectMetadata): for a pull Secret of a real ECR token, an answer of about 1 KB instead of
   * 10. A server that cannot answer that way answers with the whole object, which has it too.
   */
  createForMetadata(path: string, body: object, query?: Query): Promise<ObjectWithMetadata> {
    return this.send<ObjectWithMetadata>("POST", path, query, body, "application/json", metadataOnly);
  }

  create<T>(path: string, body: object, query?: Query): Promise<T> {
    return this.send<T>("POST", path, query, body, "application/json");
  }

  replace<T>(path: string, body: object, query?: Query): Promise<T> {
    return this.send<T>("PUT", path, query, body, "application/json");
  }

  mergePatch<T>(path: string, body: object, query?: Query): Promise<T> {
    return this.send<T>("PATCH", path, query, body, mergePatchType);
  }

  async delete(path: string, query?: Query): Promise<void> {
    await this.send<unknown>("DELETE", path, query);
  }

  /**
   * Opens a GET whose body the caller reads as it arrives (a list page or a watch stream); resolves
   * once the headers are in. No timeout: the caller watches the stream's progress and aborts.
   */
  async open(path: string, query: Query, signal: AbortSignal, accept?: string): Promise<IncomingMessage> {
    const options = await this.prepare("GET", path, query, undefined, accept);
    options.signal = signal;
    // The caller watches the stream itself; the pool's idle timeout must not apply while it is open.
    options.timeout = 0;
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const request = send(options, (response) => {
        if (response.statusCode === 401) this.connection.credentialRejected?.(options);
        resolve(response);
      });
      request.on("error", reject);
      request.end();
    });
  }

  private async prepare(
    method: string,
    path: string,
    query: Query | undefined,
    contentType?: string,
    accept?: string,
  ): Promise<RequestOptions> {
    const { target, headers } = this.addressed(path, query, contentType, accept);
    const options: RequestOptions = { ...target, method, headers };
    await this.connection.applyToHTTPSOptions(options);
    return options;
  }

  /** Where a request goes on the current server, and its headers before the credential. */
  private addressed(
    path: string,
    query: Query | undefined,
    contentType: string | undefined,
    accept = "application/json",
  ): { target: RequestOptions; headers: Record<string, string> } {
    const cluster = this.connection.getCurrentCluster();
    if (cluster === null) {
      throw new KubeError({ kind: "Invalid", message: "the kubeconfig has no current cluster" });
    }
    const headers: Record<string, string> = { accept, "user-agent": this.userAgent };
    if (contentType !== undefined) headers["content-type"] = contentType;
    return { target: this.target(cluster.server, path, query), headers };
  }

  /**
   * Protocol, host, port and path (with the query) of a request. The server's URL is parsed once,
   * not per request: a URL per request, and Node turning it back into options, were a tenth of the
   * client's CPU per write. A path that needs a URL's normalizing (a query or characters outside a
   * URL path's) still goes through one.
   */
  private target(server: string, path: string, query: Query | undefined): RequestOptions {
    const search = new URLSearchParams();
    const entries = query instanceof URLSearchParams ? query.entries() : Object.entries(query ?? {});
    for (const [key, value] of entries) {
      if (value !== undefined) search.set(key, String(value));
    }
    if (!isPlainPath(path)) {
      const url = new URL(`${server.replace(/\/+$/, "")}${path}`);
      for (const [key, value] of search) url.searchParams.set(key, value);
      return urlToHttpOptions(url);
    }
    if (this.endpoint?.server !== server) this.endpoint = endpointOf(server);
    const { protocol, hostname, port, auth, pathPrefix } = this.endpoint;
    const tail = search.size === 0 ? "" : `?${search.toString()}`;
    return { protocol, hostname, port, auth, path: `${pathPrefix}${path}${tail}` };
  }

  /**
   * Sends the request; a 429, or a 500-504 with Retry-After, is sent again after the time the server
   * asks (as client-go does), when that is at most maxRetryAfterMs, up to maxRetryAfterRetries times.
   */
  private async send<T>(
    method: string,
    path: string,
    query: Query | undefined,
    body?: object,
    contentType?: string,
    accept?: string,
  ): Promise<T> {
    const request: Outgoing = { method, path, query, contentType, accept };
    if (body !== undefined) request.payload = JSON.stringify(body);
    for (let retries = 0; ; retries++) {
      try {
        return await this.sendOnce<T>(request);
      } catch (err) {
        const waitMs = this.retryAfterMs(classifyKubeError(err));
        if (waitMs === undefined || retries >= this.maxRetryAfterRetries) throw err;
        await new Promise<void>((resolve) => this.clock.setTimer(resolve, waitMs));
      }
    }
  }

  private retryAfterMs(error: KubeError): number | undefined {
    const { status, retryAfterSeconds } = error;
    if (status === undefined || retryAfterSeconds === undefined) return undefined;
    if (status !== 429 && (status < 500 || status > 504)) return undefined;
    const waitMs = retryAfterSeconds * 1000;
    return waitMs <= this.maxRetryAfterMs ? waitMs : undefined;
  }

  private async sendOnce<T>(request: Outgoing): Promise<T> {
    try {
      const exchange = this.connection.exchange;
      const answer =
        exchange === undefined ? await this.sendByNode(request) : await this.exchange(exchange, request);
      if (answer.status < 200 || answer.status >= 300) {
        throw classifyKubeError({ statusCode: answer.status, body: answer.text, headers: answer.headers });
      }
      return (
        answer.text === "" ? undefined : parseJson(answer.text, `${request.method} ${request.path}`)
      ) as T;
    } catch (err) {
      throw classifyKubeError(err);
    }
  }

  /** On the connection's own HTTP/1.1 pool, which adds the credential and tells it of a 401. */
  private exchange(exchange: NonNullable<ClusterConnection["exchange"]>, request: Outgoing): Promise<Answer> {
    const { method, path, query, payload, contentType, accept } = request;
    const { target, headers } = this.addressed(path, query, contentType, accept);
    return exchange({ method, path: target.path ?? path, headers, body: payload, timeoutMs: this.timeoutMs });
  }

  /** On node's https, for a connection that has no pool of its own. */
  private async sendByNode(outgoing: Outgoing): Promise<Answer> {
    const { method, path, query, payload, contentType, accept } = outgoing;
    const options = await this.prepare(method, path, query, contentType, accept);
    // A socket timeout rather than an AbortSignal.timeout: the signal's timer and listeners cost
    // about a third of the client's CPU per request.
    options.timeout = this.timeoutMs;
    const answer = await new Promise<Answer>((resolve, reject) => {
      const request = send(options, (res) => {
        readBody(res).then((text) => {
          resolve({ status: res.statusCode ?? 0, text, headers: res.headers });
        }, reject);
      });
      request.on("error", reject);
      request.on("timeout", () => {
        const message = `Kubernetes API did not answer within ${this.timeoutMs / 1000} s`;
        request.destroy(new KubeError({ kind: "Unavailable", message }));
      });
      request.end(payload);
    });
    if (answer.status === 401) this.connection.credentialRejected?.(options);
    return answer;
  }
}

/** A request as the client sends it, its body already JSON. */
interface Outgoing {
  method: string;
  path: string;
  query: Query | undefined;
  payload?: string;
  contentType: string | undefined;
  accept: string | undefined;
}

/** A whole answer: its status, headers and body. */
interface Answer {
  status: number;
  text: string;
  headers: IncomingMessage["headers"];
}

function send(options: RequestOptions, onResponse: (res: IncomingMessage) => void) {
  return options.protocol === "http:" ? http.request(options, onResponse) : httpsRequest(options, onResponse);
}

const ignoreLateError = (): void => undefined;

/**
 * Hands each chunk of the response to `onChunk` until it ends; rejects when the connection closes
 * before the end or `onChunk` throws (then the response is destroyed). Once it has ended, its
 * listeners are removed: a keep-alive TLS socket keeps its first request and response reachable
 * for as long as it lives, and with them these closures and whatever they hold.
 */
export function readChunks(response: IncomingMessage, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const detach = (): void => {
      response.off("data", data);
      response.off("end", end);
      response.off("error", fail);
      response.off("close", close);
      response.on("error", ignoreLateError);
    };
    const data = (chunk: Buffer): void => {
      try {
        onChunk(chunk);
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
        response.destroy();
      }
    };
    const end = (): void => {
      detach();
      resolve();
    };
    const fail = (err: Error): void => {
      detach();
      reject(err);
    };
    const close = (): void => {
      if (!response.complete) fail(closedEarly("response"));
    };
    response.on("data", data);
    response.on("end", end);
    response.on("error", fail);
    response.on("close", close);
  });
}

/** The whole response body; rejects when the connection closes before it ends. */
export async function readBody(response: IncomingMessage, onData?: () => void): Promise<string> {
  const chunks: Buffer[] = [];
  await readChunks(response, (chunk) => {
    chunks.push(chunk);
    onData?.();
  });
  return Buffer.concat(chunks).toString("utf8");
}

/** Parses JSON without letting V8's SyntaxError, which quotes the input, carry object data into logs. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new KubeError({ kind: "Unknown", message: `${what}: the server sent data that is not JSON` });
  }
}
