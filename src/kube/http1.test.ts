import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCertificateAuthority, issueCertificate } from "../../test/harness/certs.ts";
import { eventually } from "../../test/harness/wait.ts";
import { KubeError } from "./errors.ts";
import { Http1Pool, type Http1Target } from "./http1.ts";

/** One request as the server read it. */
interface Received {
  head: string;
  body: string;
  connection: number;
}

/**
 * A loopback TCP server that reads HTTP/1.1 requests (bodies by content-length) and answers each with
 * the bytes the test's `answer` writes, so the test decides how an answer is framed and cut.
 */
class RawServer {
  readonly received: Received[] = [];
  /** The connections the client closed or lost, by number. */
  readonly closed = new Set<number>();
  connections = 0;
  answer: (socket: Socket, request: Received) => void = (socket) => socket.write(ok("{}"));
  readonly #server: Server;

  constructor() {
    this.#server = createServer((socket) => {
      const connection = ++this.connections;
      let pending = Buffer.alloc(0);
      socket.on("error", () => undefined);
      socket.on("close", () => this.closed.add(connection));
      socket.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        for (;;) {
          const end = pending.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = pending.toString("latin1", 0, end);
          const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (pending.length < end + 4 + length) return;
          const body = pending.toString("utf8", end + 4, end + 4 + length);
          pending = pending.subarray(end + 4 + length);
          const request = { head, body, connection };
          this.received.push(request);
          this.answer(socket, request);
        }
      });
    });
  }

  async listen(): Promise<Http1Target> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    const { port } = this.#server.address() as AddressInfo;
    return { protocol: "http:", hostname: "127.0.0.1", port, rejectUnauthorized: true };
  }

  close(): Promise<void> {
    return new Promise((resolve) =>
      this.#server.close(() => {
        resolve();
      }),
    );
  }
}

function ok(body: string, headers = ""): string {
  const length = Buffer.byteLength(body);
  return `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${headers}content-length: ${length}\r\n\r\n${body}`;
}

/** Writes `bytes` a few at a time, each piece in its own TCP write. */
function writeInPieces(socket: Socket, bytes: string | Buffer, size: number): void {
  const all = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  let offset = 0;
  const next = (): void => {
    if (offset >= all.length || socket.destroyed) return;
    socket.write(all.subarray(offset, offset + size));
    offset += size;
    setImmediate(next);
  };
  next();
}

const get = {
  method: "GET",
  path: "/api/v1/namespaces",
  headers: { accept: "application/json" },
  timeoutMs: 2000,
};

describe("Http1Pool", { timeout: 20_000 }, () => {
  const server = new RawServer();
  let target: Http1Target;
  let pool: Http1Pool;

  before(async () => {
    target = await server.listen();
    pool = new Http1Pool();
  });

  after(async () => {
    pool.close();
    await server.close();
  });

  it("sends the request line, host, headers and the body's length in bytes, and reads the answer", async () => {
    server.answer = (socket) =>
      socket.write(ok('{"kind":"Secret"}', "Audit-Id: a\r\nWarning: one\r\nwarning: two\r\n"));
    const body = JSON.stringify({ note: "größe" });
    const answer = await pool.request(target, {
      method: "POST",
      path: "/api/v1/namespaces/a/secrets?fieldManager=x",
      headers: { accept: "application/json", "content-type": "application/json" },
      body,
      timeoutMs: 2000,
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.text, '{"kind":"Secret"}');
    assert.equal(answer.headers["audit-id"], "a");
    assert.equal(answer.headers.warning, "one, two");
    const request = server.received.at(-1);
    assert.equal(
      request?.head,
      `POST /api/v1/namespaces/a/secrets?fieldManager=x HTTP/1.1\r\nhost: 127.0.0.1:${target.port}\r\n` +
        `accept: application/json\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}`,
    );
    assert.equal(request.body, body);
  });

  it("keeps the connection for the next request", async () => {
    server.answer = (socket) => socket.write(ok("{}"));
    await pool.request(target, get);
    const first = server.received.at(-1)?.connection;
    await pool.request(target, get);
    assert.equal(server.received.at(-1)?.connection, first);
  });

  it("reads answers cut anywhere: a byte at a time, and chunked with extensions and trailers", async () => {
    const body = '{"items":[{"metadata":{"name":"ä"}}]}';
    server.answer = (socket) => {
      writeInPieces(socket, ok(body), 1);
    };
    assert.equal((await pool.request(target, get)).text, body);

    const bytes = Buffer.from(body);
    const chunked =
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
      `${(10).toString(16)};name=value\r\n${bytes.toString("latin1", 0, 10)}\r\n` +
      `${(bytes.length - 10).toString(16).toUpperCase()}\r\n${bytes.toString("latin1", 10)}\r\n` +
      "0\r\nx-trailer: t\r\n\r\n";
    for (const size of [1, 3, 7, 1000]) {
      server.answer = (socket) => {
        writeInPieces(socket, Buffer.from(chunked, "latin1"), size);
      };
      const answer = await pool.request(target, get);
      assert.equal(answer.text, body, `pieces of ${size} bytes`);
    }
  });

  it("skips a 100 Continue and reads the answer after it", async () => {
    server.answer = (socket) => socket.write(`HTTP/1.1 100 Continue\r\n\r\n${ok('{"a":1}')}`);
    assert.equal((await pool.request(target, get)).text, '{"a":1}');
  });

  it("returns an empty body for 204, and reads a body without a length until the server closes", async () => {
    server.answer = (socket) => socket.write("HTTP/1.1 204 No Content\r\n\r\n");
    assert.equal((await pool.request(target, get)).text, "");
    server.answer = (socket) => socket.end('HTTP/1.1 200 OK\r\n\r\n{"until":"close"}');
    assert.equal((await pool.request(target, get)).text, '{"until":"close"}');
  });

  it("does not reuse a connection the server says it closes", async () => {
    server.answer = (socket) => socket.write(ok("{}", "Connection: close\r\n"));
    await pool.request(target, get);
    const first = server.received.at(-1)?.connection;
    server.answer = (socket) => socket.write(ok("{}"));
    await pool.request(target, get);
    assert.notEqual(server.received.at(-1)?.connection, first);
  });

  it("fails a request whose connection closes before the answer ends, and does not reuse it", async () => {
    server.answer = (socket) => {
      socket.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{");
      setImmediate(() => socket.destroy());
    };
    await assert.rejects(
      pool.request(target, get),
      (err: unknown) =>
        err instanceof KubeError && err.kind === "Unavailable" && /closed before/.test(err.message),
    );
    server.answer = (socket) => socket.write(ok("{}"));
    assert.equal((await pool.request(target, get)).status, 200);
  });

  it("gives up on an answer that does not come within the timeout", async () => {
    server.answer = () => undefined;
    const started = performance.now();
    await assert.rejects(
      pool.request(target, { ...get, timeoutMs: 200 }),
      (err: unknown) =>
        err instanceof KubeError && err.kind === "Unavailable" && /within 0.2 s/.test(err.message),
    );
    assert.ok(performance.now() - started < 2000);
  });

  it("rejects an answer that is not HTTP/1.1 without quoting it", async () => {
    server.answer = (socket) => socket.write('{"token":"c2VjcmV0"}\r\n\r\n');
    await assert.rejects(
      pool.request(target, get),
      (err: unknown) =>
        err instanceof KubeError && /not HTTP\/1\.1/.test(err.message) && !err.message.includes("c2Vj"),
    );
    server.answer = (socket) => socket.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n");
    await assert.rejects(pool.request(target, get), /chunk size/);
  });

  it("refuses a header value with a line break and sends nothing", async () => {
    const before = server.received.length;
    await assert.rejects(
      pool.request(target, { ...get, headers: { authorization: "Bearer a\r\nx-injected: 1" } }),
      (err: unknown) => err instanceof KubeError && err.kind === "Invalid" && !err.message.includes("Bearer"),
    );
    assert.equal(server.received.length, before);
  });

  it("opens new connections for other TLS material, and closes the old ones", async () => {
    server.answer = (socket) => socket.write(ok("{}"));
    await pool.request(target, get);
    const first = server.received.at(-1)?.connection;
    await pool.request({ ...target, cert: "another client certificate" }, get);
    const second = server.received.at(-1)?.connection;
    assert.notEqual(second, first);
    await pool.request({ ...target, cert: "another client certificate" }, get);
    assert.equal(server.received.at(-1)?.connection, second);
    await eventually(() => {
      assert.ok(server.closed.has(first ?? 0), "the first lane's idle connection is closed");
    });
    assert.ok(!server.closed.has(second ?? 0));
  });

  it("reports a refused connection with its code", async () => {
    const closed = new RawServer();
    const gone = await closed.listen();
    await closed.close();
    await assert.rejects(
      pool.request(gone, get),
      (err: unknown) => (err as { code?: string }).code === "ECONNREFUSED",
    );
  });
});

describe("Http1Pool over TLS", { timeout: 20_000 }, () => {
  it("trusts the CA it is given, checks the server's name, and refuses a server another CA signed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "http1-tls-"));
    const ca = await createCertificateAuthority(dir);
    const serving = await issueCertificate(ca, {
      fileName: "serving",
      commonName: "localhost",
      altNames: ["DNS:localhost", "IP:127.0.0.1"],
      usage: "server",
    });
    const other = await createCertificateAuthority(await mkdtemp(join(dir, "other-")), "another-ca");
    const server = createTlsServer({ cert: serving.certPem, key: serving.keyPem }, (socket) => {
      socket.on("error", () => undefined);
      socket.once("data", () => socket.write(ok('{"tls":true}')));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const pool = new Http1Pool();
    try {
      const trusted = { protocol: "https:", port, rejectUnauthorized: true, ca: Buffer.from(ca.certPem) };
      assert.equal((await pool.request({ ...trusted, hostname: "127.0.0.1" }, get)).text, '{"tls":true}');
      assert.equal((await pool.request({ ...trusted, hostname: "localhost" }, get)).text, '{"tls":true}');
      await assert.rejects(
        pool.request({ ...trusted, hostname: "127.0.0.1", servername: "elsewhere.example" }, get),
        (err: unknown) => (err as { code?: string }).code === "ERR_TLS_CERT_ALTNAME_INVALID",
      );
      await assert.rejects(
        pool.request({ ...trusted, hostname: "127.0.0.1", ca: Buffer.from(other.certPem) }, get),
        (err: unknown) => typeof (err as { code?: string }).code === "string",
      );
    } finally {
      pool.close();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
