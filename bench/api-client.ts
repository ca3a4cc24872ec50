// A minimal Kubernetes API client for the benchmark driver and the baseline: plain JSON over HTTPS
// with keep-alive connections, authenticated with a kubeconfig's client certificate.
import { Agent, request, type RequestOptions } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export interface TlsMaterial {
  ca: string;
  cert: string;
  key: string;
}

export interface ApiResponse {
  status: number;
  body: string;
}

export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;

  constructor(method: string, path: string, response: ApiResponse) {
    let message = response.body.slice(0, 200);
    try {
      const parsed = JSON.parse(response.body) as { message?: unknown };
      if (typeof parsed.message === "string") message = parsed.message;
    } catch {
      // Not a Status object: keep the start of the body.
    }
    super(`${method} ${path}: ${response.status} ${message}`);
    this.status = response.status;
  }
}

function pemOf(value: unknown, what: string): string {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  throw new Error(`the kubeconfig has no ${what} as PEM data`);
}

/** The server URL and client-certificate TLS material of a kubeconfig's current context. */
export async function tlsMaterialOf(kc: KubeConfig): Promise<{ server: string; tls: TlsMaterial }> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error("the kubeconfig has no current cluster");
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return {
    server: cluster.server.replace(/\/+$/, ""),
    tls: {
      ca: pemOf(options.ca, "CA"),
      cert: pemOf(options.cert, "client certificate"),
      key: pemOf(options.key, "client key"),
    },
  };
}

export class ApiClient {
  readonly server: string;
  readonly #agent: Agent;

  constructor(server: string, tls: TlsMaterial, maxSockets: number) {
    this.server = server;
    this.#agent = new Agent({ ...tls, keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  static async fromKubeConfig(kc: KubeConfig, maxSockets: number): Promise<ApiClient> {
    const { server, tls } = await tlsMaterialOf(kc);
    return new ApiClient(server, tls, maxSockets);
  }

  /** Sends one request; resolves with any HTTP status, rejects only on network errors and timeouts. */
  send(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.server}${path}`,
        {
          method,
          agent: this.#agent,
          timeout: 60_000,
          headers: {
            accept: "application/json",
            ...(payload === undefined
              ? {}
              : { "content-type": contentType, "content-length": Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => {
        req.destroy(new Error(`${method} ${path}: no response within 60 s`));
      });
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** Sends a request and parses the JSON answer; any status outside 2xx is an ApiError. */
  async json<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const response = await this.send(method, path, body, contentType);
    if (response.status < 200 || response.status >= 300) throw new ApiError(method, path, response);
    return JSON.parse(response.body) as T;
  }

  async text(path: string): Promise<string> {
    const response = await this.send("GET", path);
    if (response.status !== 200) throw new ApiError("GET", path, response);
    return response.body;
  }

  close(): void {
    this.#agent.destroy();
  }
}
