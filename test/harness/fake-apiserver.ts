// A stand-in for the API server in unit tests of the Kubernetes client: a loopback HTTP server that
// records each request and answers as the test says, and a connection that points a client at it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { RequestOptions } from "node:https";
import type { AddressInfo } from "node:net";
import { ClusterAccess, type ClusterConnection } from "../../src/kube/kubeconfig/cluster-access.ts";

export interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  accept: string | undefined;
  authorization: string | undefined;
  body: string;
}

export type Reply = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback HTTP server that records requests and answers with the current `reply`. */
export class FakeApiServer {
  readonly seen: Seen[] = [];
  reply: Reply = (_req, res) => res.end("{}");
  private readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        this.seen.push({
          method: req.method ?? "",
          url: req.url ?? "",
          contentType: req.headers["content-type"],
          accept: req.headers.accept,
          authorization: req.headers.authorization,
          body: Buffer.concat(chunks).toString(),
        });
        this.reply(req, res);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

/** A connection to `server` that sends a bearer token and records the requests answered 401. */
export function connection(server: string, rejected: unknown[] = []): ClusterConnection {
  return {
    getCurrentCluster: () => ({ server }),
    credentialRejected: (options) => rejected.push(options),
    applyToHTTPSOptions: (options: RequestOptions) => {
      const headers = options.headers;
      if (headers === undefined || Array.isArray(headers)) throw new Error("expected a header object");
      (headers as Record<string, string>).authorization = "Bearer test-token";
      return Promise.resolve();
    },
  };
}

/**
 * A connection to `server` as the operator makes one (ClusterAccess, with its own HTTP/1.1 pool for
 * whole answers), sending a bearer token and counting the requests answered 401.
 */
export function pooledConnection(server: string, rejected: unknown[] = []): ClusterAccess {
  const credential = { authorization: "Bearer test-token" };
  return new ClusterAccess({
    contextName: "test",
    clusterName: "test",
    server,
    tls: { rejectUnauthorized: true },
    credential: { current: () => Promise.resolve(credential), rejected: (used) => rejected.push(used) },
    proxy: undefined,
  });
}
