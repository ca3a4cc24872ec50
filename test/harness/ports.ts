// Free loopback ports for the processes the harness starts.
import { createServer } from "node:net";

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("could not read the bound port"));
        return;
      }
      server.close(() => {
        resolve(address.port);
      });
    });
  });
}
