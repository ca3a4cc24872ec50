// Free loopback ports for the processes the harness starts.
//
// A port is picked below the kernel's ephemeral range. A port from that range (what listen(0) hands
// out) can be taken by any outgoing connection between the moment it is picked and the moment the
// process that was given it binds it; a port below the range can only be taken by an explicit bind.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const lowestPort = 10_000;
const attempts = 200;
const handedOut = new Set<number>();
/**
 * The one port in that span that fetch refuses to connect to ("bad port", the WHATWG Fetch
 * standard's port blocking); the client-node oracle's requests go through fetch.
 */
const fetchBlockedPort = 10_080;

export async function freePort(host = "127.0.0.1"): Promise<number> {
  const below = ephemeralRangeStart();
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const port = lowestPort + Math.floor(Math.random() * (below - lowestPort));
    if (handedOut.has(port) || port === fetchBlockedPort) {
      continue;
    }
    if (await canBind(host, port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on ${host} between ${lowestPort} and ${below} after ${attempts} attempts`);
}

function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    const port = Number(low);
    return Number.isInteger(port) && port > lowestPort + 1_000 ? port : 32_768;
  } catch {
    return 32_768;
  }
}

async function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => {
      resolve(false);
    });
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}
