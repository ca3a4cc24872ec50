// A loopback TCP proxy in front of the API server for network faults: it can stall every
// connection (bytes stop flowing, sockets stay open), cut them without a clean close, or refuse
// new ones. TLS passes through untouched, so the server certificate for 127.0.0.1 still matches.
import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

export type TcpProxyMode = "forward" | "stall" | "refuse";

export interface TcpProxy {
  readonly port: number;
  readonly mode: TcpProxyMode;
  setMode(mode: TcpProxyMode): void;
  /** Destroys every open connection at once (no FIN handshake the client could wait for). */
  cutAll(): void;
  /**
   * Stalls every connection open now, for good (a half-open path: nothing flows, nothing closes),
   * while new connections are forwarded as the mode says.
   */
  stallOpen(): void;
  /** A copy of `kc` whose server is this proxy. */
  kubeConfigVia(kc: KubeConfig): KubeConfig;
  stop(): Promise<void>;
}

export interface TcpProxyOptions {
  /** Where to listen: 127.0.0.1 on a free port by default. */
  listenHost?: string;
  listenPort?: number;
}

export async function startTcpProxy(targetPort: number, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  let mode: TcpProxyMode = "forward";
  const pairs = new Set<{ client: Socket; upstream: Socket; dark: boolean }>();

  const server: Server = createServer((client) => {
    if (mode === "refuse") {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, "127.0.0.1");
    const pair = { client, upstream, dark: false };
    pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on("data", (chunk: Buffer) => {
        // While stalled, bytes are dropped: the peer sees an open, silent connection.
        if (mode === "forward" && !pair.dark) to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // The server hanging up reaches the client only while the path is not dark: a half-open
    // connection ends when the client gives up on it.
    const upstreamGone = (): void => {
      if (pair.dark) upstream.destroy();
      else close();
    };
    client.on("error", close);
    upstream.on("error", upstreamGone);
    client.on("close", close);
    upstream.on("close", upstreamGone);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.listenPort ?? 0, options.listenHost ?? "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    port,
    get mode() {
      return mode;
    },
    setMode(next) {
      mode = next;
    },
    cutAll() {
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    stallOpen() {
      for (const pair of pairs) pair.dark = true;
    },
    kubeConfigVia(kc) {
      const copy = new KubeConfig();
      copy.loadFromString(kc.exportConfig());
      const cluster = copy.getCurrentCluster();
      if (cluster === null) throw new Error("kubeconfig has no current cluster");
      copy.loadFromOptions({
        clusters: copy
          .getClusters()
          .map((c) => (c.name === cluster.name ? { ...c, server: `https://127.0.0.1:${port}` } : c)),
        users: copy.getUsers(),
        contexts: copy.getContexts(),
        currentContext: copy.getCurrentContext(),
      });
      return copy;
    },
    async stop() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
