// A loopback HTTP proxy in front of moto that counts AWS API calls by operation and can inject
// faults (5xx, throttling, hanging connections) into every call or into one service or region's,
// for tests of minting, sharing and backoff. Calls of a service moto lacks can be routed to a
// stand-in by their X-Amz-Target.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Fault = "none" | "error" | "throttle" | "hang" | "auth";

/** The calls a fault applies to: those of one service ("ecr", "ecr-public", "sts"), one signed region, or both. */
export interface FaultScope {
  service?: string;
  region?: string;
}

export interface AwsCall {
  operation: string;
  /** The access key id that signed the request (from the SigV4 Authorization header). */
  accessKeyId: string | undefined;
  /** The region of the SigV4 credential scope; undefined for unsigned calls (AssumeRoleWithWebIdentity). */
  region: string | undefined;
  /** The form parameters of a Query-protocol call (STS); empty for JSON calls. */
  params: Readonly<Record<string, string>>;
  at: number;
}

/** A fixed password, or one per region of the call (undefined for an unsigned call). */
export type EcrTokenPassword = string | ((region: string | undefined) => string);

export interface AwsProxy {
  readonly endpoint: string;
  /** Calls seen per operation, e.g. "ecr:GetAuthorizationToken", "sts:AssumeRole". */
  count(operation: string): number;
  calls(): AwsCall[];
  /**
   * Answers calls with `fault` from now on: every call, or with `scope` only the calls it matches
   * (each scope keeps its own fault until set to "none"; a fault for every call wins).
   */
  setFault(fault: Fault, scope?: FaultScope): void;
  /**
   * Answers signed calls for any other region as AWS does for a region that does not exist (moto
   * serves every region name); undefined serves all regions again.
   */
  setKnownRegions(regions: readonly string[] | undefined): void;
  /** Sends calls whose X-Amz-Target starts with `targetPrefix` to `upstream` instead of moto. */
  routeTarget(targetPrefix: string, upstream: string): void;
  /**
   * Hands out ECR tokens holding `password` from now on, as AWS does with every new token (moto's
   * are fixed per account, whatever the region); a function of the signed region tells the regions'
   * tokens apart, as ECR does. Undefined passes moto's through again.
   */
  setEcrTokenPassword(password: EcrTokenPassword | undefined): void;
  /**
   * Reports every new ECR token as expiring `lifetimeMs` after it is handed out, as AWS reports its
   * tokens' expiry (moto reports a date in the past, which the operator replaces with 12 hours), so
   * that a test can watch a token run out. Undefined passes moto's through again.
   */
  setEcrTokenLifetime(lifetimeMs: number | undefined): void;
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

function formParams(req: IncomingMessage, body: string): Record<string, string> {
  const type = req.headers["content-type"] ?? "";
  if (!type.startsWith("application/x-www-form-urlencoded")) return {};
  return Object.fromEntries(new URLSearchParams(body));
}

interface EcrTokenReply {
  authorizationData?: { authorizationToken?: string; expiresAt?: number }[];
}

/** moto's GetAuthorizationToken reply with every token's password and expiry replaced where given. */
function rewrittenTokenReply(
  body: Buffer,
  password: string | undefined,
  lifetimeMs: number | undefined,
): Buffer {
  const reply = JSON.parse(body.toString()) as EcrTokenReply;
  for (const data of reply.authorizationData ?? []) {
    if (password !== undefined) data.authorizationToken = Buffer.from(`AWS:${password}`).toString("base64");
    // Epoch seconds, as ECR's JSON protocol sends timestamps.
    if (lifetimeMs !== undefined) data.expiresAt = (Date.now() + lifetimeMs) / 1000;
  }
  return Buffer.from(JSON.stringify(reply));
}

/** A proxy in front of moto (`upstream`), on 127.0.0.1 or `listenHost`. */
export async function startAwsProxy(upstream: string, listenHost = "127.0.0.1"): Promise<AwsProxy> {
  const moto = new URL(upstream);
  const routes = new Map<string, URL>();
  const seen: AwsCall[] = [];
  /** Hanging responses, by the key of the scope whose fault holds them ("" for every call). */
  const hanging = new Map<ServerResponse, string>();
  let fault: Fault = "none";
  const scopedFaults = new Map<string, { scope: FaultScope; fault: Fault }>();
  const scopeKey = (scope: FaultScope): string => `${scope.service ?? "*"}/${scope.region ?? "*"}`;
  /** The fault for a call, and the key of the scope it comes from. */
  const faultFor = (operation: string, region: string | undefined): [Fault, string] => {
    if (fault !== "none") return [fault, ""];
    const service = operation.split(":")[0];
    for (const [key, scoped] of scopedFaults) {
      const { scope } = scoped;
      if ((scope.service ?? service) === service && (scope.region ?? region) === region)
        return [scoped.fault, key];
    }
    return ["none", ""];
  };
  let knownRegions: ReadonlySet<string> | undefined;
  let ecrTokenPassword: EcrTokenPassword | undefined;
  let ecrTokenLifetimeMs: number | undefined;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const operation = operationOf(req, body.toString());
      const scope = /Credential=([^/]+)\/[^/]+\/([^/]+)\//.exec(req.headers.authorization ?? "");
      if (!operation.startsWith("http:")) {
        seen.push({
          operation,
          accessKeyId: scope?.[1],
          region: scope?.[2],
          params: formParams(req, body.toString()),
          at: Date.now(),
        });
      }
      const region = scope?.[2];
      if (knownRegions !== undefined && region !== undefined && !knownRegions.has(region)) {
        const type = "InvalidSignatureException";
        res.writeHead(400, { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": type });
        res.end(JSON.stringify({ __type: type, message: "Credential should be scoped to a valid region. " }));
        return;
      }
      const [active, activeScope] = faultFor(operation, region);
      if (active === "hang") {
        hanging.set(res, activeScope);
        res.on("close", () => {
          hanging.delete(res);
        });
        return;
      }
      if (active !== "none") {
        const { status, type, message } = faultResponses[active];
        res.writeHead(status, { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": type });
        res.end(JSON.stringify({ __type: type, message }));
        return;
      }
      const targetHeader = req.headers["x-amz-target"];
      const routed = [...routes].find(
        ([prefix]) => typeof targetHeader === "string" && targetHeader.startsWith(prefix),
      );
      const target = routed?.[1] ?? moto;
      const upstreamReq = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upstreamRes) => {
          const password =
            typeof ecrTokenPassword === "function" ? ecrTokenPassword(region) : ecrTokenPassword;
          if (
            (password === undefined && ecrTokenLifetimeMs === undefined) ||
            operation !== "ecr:GetAuthorizationToken" ||
            upstreamRes.statusCode !== 200
          ) {
            res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
            upstreamRes.pipe(res);
            return;
          }
          const reply: Buffer[] = [];
          upstreamRes.on("data", (chunk: Buffer) => reply.push(chunk));
          upstreamRes.on("end", () => {
            const rewritten = rewrittenTokenReply(Buffer.concat(reply), password, ecrTokenLifetimeMs);
            const headers = { ...upstreamRes.headers, "content-length": String(rewritten.length) };
            delete headers["transfer-encoding"];
            res.writeHead(200, headers);
            res.end(rewritten);
          });
        },
      );
      upstreamReq.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      upstreamReq.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://${listenHost}:${port}`,
    count: (operation) => seen.filter((c) => c.operation === operation).length,
    calls: () => [...seen],
    setFault(next, scope) {
      const key = scope === undefined ? "" : scopeKey(scope);
      if (scope === undefined) fault = next;
      else if (next === "none") scopedFaults.delete(key);
      else scopedFaults.set(key, { scope, fault: next });
      if (next !== "hang") {
        for (const [res, holder] of hanging) {
          if (holder !== key) continue;
          res.destroy();
          hanging.delete(res);
        }
      }
    },
    setKnownRegions(regions) {
      knownRegions = regions === undefined ? undefined : new Set(regions);
    },
    routeTarget(targetPrefix, to) {
      routes.set(targetPrefix, new URL(to));
    },
    setEcrTokenPassword(password) {
      ecrTokenPassword = password;
    },
    setEcrTokenLifetime(lifetimeMs) {
      ecrTokenLifetimeMs = lifetimeMs;
    },
    reset() {
      seen.length = 0;
    },
    async stop() {
      for (const res of hanging.keys()) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
