// HTTP endpoints for Prometheus and the kubelet: /metrics, /healthz (alive: the event loop
// turns and no watch is stuck) and /readyz (caches synced, for leader and standby alike).
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Registry } from "prom-client";

import { http } from "../node-http.ts";

export interface HealthCheck {
  /** undefined when healthy, else why not. */
  (): string | undefined;
}

export interface ObservabilityServerOptions {
  metricsAddr: string | undefined;
  healthAddr: string | undefined;
  registry: Registry;
  live: HealthCheck[];
  ready: HealthCheck[];
  /** /healthz fails when the event loop was blocked longer than this (ms). */
  maxEventLoopDelayMs?: number;
}

export interface ObservabilityServer {
  /** The bound addresses as host:port, once listening. */
  readonly addresses: { metrics?: string; health?: string };
  close(): Promise<void>;
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(":");
  const host = addr.slice(0, at).replace(/^\[|\]$/g, "");
  return { host: host === "" ? "0.0.0.0" : host, port: Number(addr.slice(at + 1)) };
}

function answer(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": type });
  res.end(body);
}

export async function startObservabilityServer(
  options: ObservabilityServerOptions,
): Promise<ObservabilityServer> {
  const maxDelayNs = (options.maxEventLoopDelayMs ?? 5_000) * 1e6;
  const loop = monitorEventLoopDelay({ resolution: 50 });
  loop.enable();

  function probe(checks: HealthCheck[], res: ServerResponse): void {
    const problems = checks.map((check) => check()).filter((p): p is string => p !== undefined);
    answer(
      res,
      problems.length === 0 ? 200 : 503,
      problems.length === 0 ? "ok\n" : `${problems.join("\n")}\n`,
    );
  }

  const eventLoop: HealthCheck = () => {
    const worst = loop.max;
    loop.reset();
    return worst > maxDelayNs ? `event loop blocked for ${Math.round(worst / 1e6)} ms` : undefined;
  };

  function handle(
    req: IncomingMessage,
    res: ServerResponse,
    serveMetrics: boolean,
    serveHealth: boolean,
  ): void {
    const path = (req.url ?? "/").split("?")[0];
    if (serveMetrics && path === "/metrics") {
      options.registry.metrics().then(
        (text) => {
          answer(res, 200, text, options.registry.contentType);
        },
        () => {
          answer(res, 500, "metrics unavailable\n");
        },
      );
      return;
    }
    if (serveHealth && (path === "/healthz" || path === "/livez")) {
      probe([eventLoop, ...options.live], res);
      return;
    }
    if (serveHealth && path === "/readyz") {
      probe(options.ready, res);
      return;
    }
    answer(res, 404, "not found\n");
  }

  const servers: Server[] = [];
  const addresses: { metrics?: string; health?: string } = {};
  async function listen(addr: string, serveMetrics: boolean, serveHealth: boolean): Promise<string> {
    const { host, port } = splitHostPort(addr);
    const server = http.createServer((req, res) => {
      handle(req, res, serveMetrics, serveHealth);
    });
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        resolve();
      });
    });
    const bound = server.address();
    return typeof bound === "object" && bound !== null ? `${host}:${bound.port}` : addr;
  }

  if (options.metricsAddr !== undefined && options.metricsAddr === options.healthAddr) {
    const both = await listen(options.metricsAddr, true, true);
    addresses.metrics = both;
    addresses.health = both;
  } else {
    if (options.metricsAddr !== undefined) addresses.metrics = await listen(options.metricsAddr, true, false);
    if (options.healthAddr !== undefined) addresses.health = await listen(options.healthAddr, false, true);
  }

  return {
    addresses,
    async close() {
      loop.disable();
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => {
                resolve();
              });
            }),
        ),
      );
    },
  };
}
