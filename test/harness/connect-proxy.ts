// A loopback HTTP proxy that serves CONNECT tunnels, as a corporate proxy does for https, and
// sends every tunnel to one upstream port on 127.0.0.1 whatever host the client asked for: so a
// client can name the API server by a DNS name that only exists through the proxy. It records each
// tunnel's target and whether it carried Proxy-Authorization, and can insist on credentials.
import { createServer, type IncomingMessage } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";

export interface Tunnel {
  /** The CONNECT target as the client sent it, e.g. "kubernetes.default.svc:6443". */
  target: string;
  proxyAuthorization: string | undefined;
}

export interface ConnectProxy {
  readonly url: string;
  readonly tunnels: readonly Tunnel[];
  /** Tunnels open now. */
  open(): number;
  stop(): Promise<void>;
}

export interface ConnectProxyOptions {
  upstreamPort: number;
  /** When set, a CONNECT without this Proxy-Authorization value gets 407. */
  requireAuthorization?: string;
}

export async function startConnectProxy(options: ConnectProxyOptions): Promise<ConnectProxy> {
  const tunnels: Tunnel[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => {
    // Only tunnels: a plain request through this proxy is a test failure, answered loudly.
    res.statusCode = 405;
    res.end("this proxy serves CONNECT only\n");
  });
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    const proxyAuthorization = req.headers["proxy-authorization"];
    tunnels.push({ target: req.url ?? "", proxyAuthorization });
    if (options.requireAuthorization !== undefined && proxyAuthorization !== options.requireAuthorization) {
      client.end("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n");
      return;
    }
    const upstream = connect(options.upstreamPort, "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
      socket.on("error", () => {
        socket.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    open: () => Math.floor(sockets.size / 2),
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}
