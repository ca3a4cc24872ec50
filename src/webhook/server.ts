// The HTTPS endpoint the API server calls: POST /mutate-v1-pod with an AdmissionReview. It starts
// listening once it has a serving certificate and swaps certificates in place (new handshakes use
// the new one; open connections keep theirs), so a rotation drops no request.
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { splitHostPort } from "../observability/server.ts";

export const MUTATE_PODS_PATH = "/mutate-v1-pod";
/** An AdmissionReview carries the Pod once; etcd refuses objects over 1.5 MiB. */
const maxBodyBytes = 4 * 1024 * 1024;
/** The API server waits at most 30 s (timeoutSeconds); a request taking longer is abandoned. */
const requestTimeoutMs = 30_000;

export interface ServingCertificate {
  certPem: string;
  keyPem: string;
  notAfter: number;
}

/** Where the serving certificate comes from: the operator's own Secret, or files (cert-manager). */
export interface TlsSource {
  onCertificate(listener: (cert: ServingCertificate) => void): void;
  start(): void;
  /** Look again now, e.g. after this replica became the leader. */
  kick(): void;
  stop(): Promise<void>;
}

export type ReviewHandler = (body: unknown) => Promise<{ status: number; body: object | string }>;

export class WebhookServer {
  readonly #addr: string;
  readonly #handle: ReviewHandler;
  #server: Server | undefined;
  #address: string | undefined;

  constructor(addr: string, handle: ReviewHandler) {
    this.#addr = addr;
    this.#handle = handle;
  }

  /** host:port once listening. */
  get address(): string | undefined {
    return this.#address;
  }

  /** Listens with `cert` the first time; afterwards replaces the certificate for new connections. */
  async serve(cert: ServingCertificate): Promise<void> {
    if (this.#server !== undefined) {
      this.#server.setSecureContext({ cert: cert.certPem, key: cert.keyPem });
      return;
    }
    const server = createServer(
      { cert: cert.certPem, key: cert.keyPem, minVersion: "TLSv1.2", requestTimeout: requestTimeoutMs },
      (req, res) => {
        this.#respond(req, res);
      },
    );
    this.#server = server;
    const { host, port } = splitHostPort(this.#addr);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const bound = server.address();
    this.#address = typeof bound === "object" && bound !== null ? `${host}:${bound.port}` : this.#addr;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
      server.closeIdleConnections();
    });
  }

  #respond(req: IncomingMessage, res: ServerResponse): void {
    const reply = (status: number, body: object | string): void => {
      const text = typeof body === "string" ? `${body}\n` : JSON.stringify(body);
      res.writeHead(status, {
        "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
      });
      res.end(text);
    };
    if ((req.url ?? "").split("?")[0] !== MUTATE_PODS_PATH) {
      reply(404, "not found");
      return;
    }
    if (req.method !== "POST") {
      reply(405, "only POST");
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // A client that hangs up mid-body; the response is then moot.
    req.on("error", () => undefined);
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        if (!res.headersSent) reply(413, "request too large");
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
        reply(400, "the body is not JSON");
        return;
      }
      this.#handle(body).then(
        (answer) => {
          reply(answer.status, answer.body);
        },
        (err: unknown) => {
          reply(500, err instanceof Error ? err.message : "internal error");
        },
      );
    });
  }
}
