// A loopback HTTP proxy in front of moto that counts AWS API calls by operation and can inject
// faults (5xx, throttling, hanging connections), for tests of minting, sharing and backoff.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Fault = "none" | "error" | "throttle" | "hang" | "auth";

export interface AwsCall {
  operation: string;
  /** The access key id that signed the request (from the SigV4 Authorization header). */
  accessKeyId: string | undefined;
  at: number;
}

export interface AwsProxy {
  readonly endpoint: string;
  /** Calls seen per operation, e.g. "ecr:GetAuthorizationToken", "sts:AssumeRole". */
  count(operation: string): number;
  calls(): AwsCall[];
  setFault(fault: Fault): void;
  reset(): void;
  stop(): Promise<void>;
}

function operationOf(req: IncomingMessage, body: string): string {
  const target = req.headers["x-amz-target"];
  if (typeof target === "string") {
    const [prefix = "", action = ""] = target.split(".");
    const service = prefix.startsWith("AmazonEC2ContainerRegistry")
      ? "ecr"
      : prefix.startsWith("SpencerFrontendService")
        ? "ecr-public"
        : prefix;
    return `${service}:${action}`;
  }
  const action = new URLSearchParams(body).get("Action");
  return action === null ? `http:${req.method ?? ""} ${req.url ?? ""}` : `sts:${action}`;
}

const faultResponses: Record<
  Exclude<Fault, "none" | "hang">,
  { status: number; type: string; message: string }
> = {
  error: { status: 500, type: "ServerException", message: "injected server error" },
  throttle: { status: 400, type: "ThrottlingException", message: "Rate exceeded" },
  auth: {
    status: 400,
    type: "UnrecognizedClientException",
    message: "The security token included in the request is invalid.",
  },
};

export async function startAwsProxy(upstream: string): Promise<AwsProxy> {
  const target = new URL(upstream);
  const seen: AwsCall[] = [];
  const hanging = new Set<ServerResponse>();
  let fault: Fault = "none";

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const operation = operationOf(req, body.toString());
      if (!operation.startsWith("http:")) {
        const signature = /Credential=([^/]+)\//.exec(req.headers.authorization ?? "");
        seen.push({ operation, accessKeyId: signature?.[1], at: Date.now() });
      }
      if (fault === "hang") {
        hanging.add(res);
        res.on("close", () => {
          hanging.delete(res);
        });
        return;
      }
      if (fault !== "none") {
        const { status, type, message } = faultResponses[fault];
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": type });
        res.end(JSON.stringify({ __type: type, message }));
        return;
      }
      const upstreamReq = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
        },
      );
      upstreamReq.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      upstreamReq.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    count: (operation) => seen.filter((c) => c.operation === operation).length,
    calls: () => [...seen],
    setFault(next) {
      fault = next;
      if (next !== "hang") {
        for (const res of hanging) res.destroy();
        hanging.clear();
      }
    },
    reset() {
      seen.length = 0;
    },
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
