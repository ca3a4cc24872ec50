// HTTP/1.1 requests whose answer is read whole (create, patch, replace, get, delete), over a pool of
// kept-alive connections. Node's https client spends about twice this one's CPU on each such request
// (its streams, agent and message objects, run by V8's interpreter as the image starts node): for a
// cold converge's thousands of writes, that was most of the operator's CPU. Lists and watches, read
// as they arrive, stay on node's https (rest.ts `open`).
import { connect as tcpConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, createSecureContext, type SecureContext } from "node:tls";
import { KubeError } from "./errors.ts";

/** The TLS material of a connection. */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer | string;
  key?: Buffer | string;
  rejectUnauthorized: boolean;
  /** The TLS server name; by default the host name, and none for an IP address. */
  servername?: string;
}

/** Where a request goes, and the TLS material of its connection. */
export interface Http1Target extends TlsMaterial {
  protocol: string;
  hostname: string;
  port: number;
}

export interface Http1Request {
  method: string;
  /** The path and query, already escaped. */
  path: string;
  /** Lower-case names. */
  headers: Record<string, string>;
  body?: string;
  /** No answer within this time fails the request as Unavailable and closes its connection. */
  timeoutMs: number;
}

export interface Http1Answer {
  status: number;
  /** Lower-case names; a header sent more than once has its values joined by ", ". */
  headers: Record<string, string>;
  text: string;
}

/**
 * Pooled connections idle longer than this are closed by the client, well before the API server's
 * 90 s idle timeout, so a request never goes out on a socket the server is closing (ECONNRESET).
 */
export const IDLE_SOCKET_TIMEOUT_MS = 30_000;

/** The most bytes a status line and headers may take, as node's default. */
const maxHeadBytes = 16 * 1024;
const headEnd = Buffer.from("\r\n\r\n");
const lineEnd = Buffer.from("\r\n");
const noBytes = Buffer.alloc(0);
const lineBreak = /[\r\n\0]/;

export function closedEarly(what: string): KubeError {
  return new KubeError({
    kind: "Unavailable",
    message: `${what}: connection closed before the response ended`,
  });
}

function notHttp(detail: string): KubeError {
  return new KubeError({ kind: "Unavailable", message: `the server's answer is not HTTP/1.1: ${detail}` });
}

/**
 * Connections to one endpoint with one client certificate. A request with other TLS material or
 * another endpoint starts a new lane: the old lane's idle connections close then, its busy ones
 * once their answer is in.
 */
class Lane {
  readonly target: Http1Target;
  readonly context: SecureContext | undefined;
  readonly idle: Connection[] = [];

  constructor(target: Http1Target) {
    this.target = target;
    this.context =
      target.protocol === "https:"
        ? createSecureContext({ ca: target.ca, cert: target.cert, key: target.key })
        : undefined;
  }

  serves(target: Http1Target): boolean {
    const own = this.target;
    return (
      own.protocol === target.protocol &&
      own.hostname === target.hostname &&
      own.port === target.port &&
      own.ca === target.ca &&
      own.cert === target.cert &&
      own.key === target.key &&
      own.rejectUnauthorized === target.rejectUnauthorized &&
      own.servername === target.servername
    );
  }

  open(pool: Http1Pool): Connection {
    const { hostname, port, rejectUnauthorized } = this.target;
    const socket =
      this.context === undefined
        ? tcpConnect({ host: hostname, port })
        : tlsConnect({
            host: hostname,
            port,
            secureContext: this.context,
            rejectUnauthorized,
            servername: this.target.servername ?? (isIP(hostname) === 0 ? hostname : undefined),
            ALPNProtocols: ["http/1.1"],
          });
    return new Connection(socket, this, pool);
  }
}

type Framing = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailers" | "until-close";

/** One request on its way: what has been read of its answer. */
class Exchange {
  readonly resolve: (answer: Http1Answer) => void;
  readonly reject: (err: Error) => void;
  readonly timeoutMs: number;
  framing: Framing = "head";
  status = 0;
  headers: Record<string, string> = {};
  /** Bytes of the body (or of the current chunk) still to come. */
  remaining = 0;
  body: Buffer[] = [];
  /** The server closes the connection after this answer. */
  closes = false;

  constructor(resolve: (answer: Http1Answer) => void, reject: (err: Error) => void, timeoutMs: number) {
    this.resolve = resolve;
    this.reject = reject;
    this.timeoutMs = timeoutMs;
  }
}

class Connection {
  readonly socket: Socket;
  readonly lane: Lane;
  readonly #pool: Http1Pool;
  #exchange: Exchange | undefined;
  /** Bytes read and not yet parsed: part of a head, a chunk-size line or a chunk's end. */
  #pending: Buffer = noBytes;
  #closed = false;

  constructor(socket: Socket, lane: Lane, pool: Http1Pool) {
    this.socket = socket;
    this.lane = lane;
    this.#pool = pool;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000);
    socket.on("data", (chunk: Buffer) => {
      this.#read(chunk);
    });
    socket.on("error", (err) => {
      this.#close(err);
    });
    socket.on("end", () => {
      this.#ended();
    });
    socket.on("close", () => {
      this.#ended();
    });
    socket.on("timeout", () => {
      const exchange = this.#exchange;
      const message = `Kubernetes API did not answer within ${(exchange?.timeoutMs ?? 0) / 1000} s`;
      this.#close(exchange === undefined ? undefined : new KubeError({ kind: "Unavailable", message }));
    });
  }

  send(head: string, body: string | undefined, exchange: Exchange): void {
    this.#exchange = exchange;
    this.socket.ref();
    this.socket.setTimeout(exchange.timeoutMs);
    this.socket.write(body === undefined ? head : head + body);
  }

  /** Closes the connection; a request on it fails with `err` (or as closed early). */
  close(err?: Error): void {
    this.#close(err);
  }

  #close(err: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pool.forget(this);
    this.socket.destroy();
    const exchange = this.#exchange;
    this.#exchange = undefined;
    exchange?.reject(err ?? closedEarly("response"));
  }

  #ended(): void {
    const exchange = this.#exchange;
    if (exchange?.framing === "until-close") {
      this.#exchange = undefined;
      this.#finish(exchange);
    }
    this.#close(undefined);
  }

  #read(chunk: Buffer): void {
    const exchange = this.#exchange;
    if (exchange === undefined) {
      this.#close(undefined);
      return;
    }
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    try {
      this.#parse(exchange);
    } catch (err) {
      this.#close(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #parse(exchange: Exchange): void {
    for (;;) {
      const pending = this.#pending;
      switch (exchange.framing) {
        case "head": {
          const end = pending.indexOf(headEnd);
          if (end < 0) {
            if (pending.length > maxHeadBytes) throw notHttp("headers too large");
            return;
          }
          this.#pending = pending.subarray(end + headEnd.length);
          readHead(exchange, pending.toString("latin1", 0, end));
          break;
        }
        case "length":
        case "chunk-data":
          this.#take(exchange);
          if (exchange.remaining > 0) return;
          if (exchange.framing === "length") {
            this.#complete(exchange);
            return;
          }
          exchange.framing = "chunk-end";
          break;
        case "chunk-end":
          if (pending.length < lineEnd.length) return;
          if (!pending.subarray(0, lineEnd.length).equals(lineEnd))
            throw notHttp("a chunk without its line end");
          this.#pending = pending.subarray(lineEnd.length);
          exchange.framing = "chunk-size";
          break;
        case "chunk-size": {
          const line = this.#line();
          if (line === undefined) return;
          const size = /^[0-9a-fA-F]{1,8}(?=;|[ \t]*$)/.exec(line);
          if (size === null) throw notHttp("a chunk size that is not hexadecimal");
          exchange.remaining = Number.parseInt(size[0], 16);
          exchange.framing = exchange.remaining === 0 ? "trailers" : "chunk-data";
          break;
        }
        case "trailers": {
          const line = this.#line();
          if (line === undefined) return;
          if (line === "") {
            this.#complete(exchange);
            return;
          }
          break;
        }
        case "until-close":
          this.#take(exchange);
          return;
      }
    }
  }

  /** The next line of framing, without its end; undefined until it has arrived. */
  #line(): string | undefined {
    const end = this.#pending.indexOf(lineEnd);
    if (end < 0) {
      if (this.#pending.length > maxHeadBytes) throw notHttp("a line too long");
      return undefined;
    }
    const line = this.#pending.toString("latin1", 0, end);
    this.#pending = this.#pending.subarray(end + lineEnd.length);
    return line;
  }

  /** Moves the body bytes pending into the answer, up to the bytes still to come. */
  #take(exchange: Exchange): void {
    const pending = this.#pending;
    const count =
      exchange.framing === "until-close" ? pending.length : Math.min(pending.length, exchange.remaining);
    if (count === 0) return;
    exchange.body.push(count === pending.length ? pending : pending.subarray(0, count));
    exchange.remaining -= count;
    this.#pending = count === pending.length ? noBytes : pending.subarray(count);
  }

  #complete(exchange: Exchange): void {
    this.#exchange = undefined;
    // Bytes past the answer's end mean the two sides no longer agree where answers start.
    if (exchange.closes || this.#pending.length > 0) this.#close(undefined);
    else this.#pool.keep(this);
    this.#finish(exchange);
  }

  #finish(exchange: Exchange): void {
    const { body } = exchange;
    const bytes = body.length === 1 ? body[0] : Buffer.concat(body);
    const text = bytes === undefined ? "" : bytes.toString("utf8");
    exchange.resolve({ status: exchange.status, headers: exchange.headers, text });
  }

  /** Waits for the next request, or closes after the idle timeout. */
  park(): void {
    this.socket.setTimeout(IDLE_SOCKET_TIMEOUT_MS);
    this.socket.unref();
  }
}

/** Reads a status line and headers into the exchange, and how its body is framed. */
function readHead(exchange: Exchange, head: string): void {
  const lines = head.split("\r\n");
  const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0] ?? "");
  if (statusLine === null) throw notHttp("no status line");
  const status = Number(statusLine[2]);
  if (status >= 100 && status < 200) return; // 100 Continue and the like: the real answer follows
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const colon = line.indexOf(":");
    if (colon <= 0) throw notHttp("a header line without a name");
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const earlier = headers[name];
    headers[name] = earlier === undefined ? value : `${earlier}, ${value}`;
  }
  exchange.status = status;
  exchange.headers = headers;
  const connection = headers.connection?.toLowerCase() ?? "";
  exchange.closes = statusLine[1] === "0" ? !connection.includes("keep-alive") : connection.includes("close");
  const encoding = headers["transfer-encoding"];
  const length = headers["content-length"];
  if (status === 204 || status === 304) {
    exchange.framing = "length";
    exchange.remaining = 0;
  } else if (encoding !== undefined) {
    if (encoding.toLowerCase() !== "chunked") throw notHttp(`transfer encoding ${encoding}`);
    exchange.framing = "chunk-size";
  } else if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) throw notHttp("a content length that is not a number");
    exchange.framing = "length";
    exchange.remaining = Number(length);
  } else {
    exchange.framing = "until-close";
    exchange.closes = true;
  }
}

/** The host header of a target: the port only when it is not the protocol's default. */
function hostHeader({ protocol, hostname, port }: Http1Target): string {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const defaultPort = protocol === "https:" ? 443 : 80;
  return port === defaultPort ? host : `${host}:${port}`;
}

/**
 * Kept-alive HTTP/1.1 connections, one request at a time on each; a request with no idle connection
 * opens one (callers bound their concurrency). No pipelining, and no retry: a request that fails is
 * the caller's to retry, as with node's client.
 */
export class Http1Pool {
  #lane: Lane | undefined;
  readonly #open = new Set<Connection>();

  request(target: Http1Target, request: Http1Request): Promise<Http1Answer> {
    for (const [name, value] of Object.entries(request.headers)) {
      if (lineBreak.test(value)) {
        return Promise.reject(
          new KubeError({ kind: "Invalid", message: `the ${name} header of a request holds a line break` }),
        );
      }
    }
    let lane = this.#lane;
    if (lane?.serves(target) !== true) {
      lane = new Lane(target);
      this.#retire();
      this.#lane = lane;
    }
    const connection = lane.idle.pop() ?? this.#connect(lane);
    const { method, path, headers, body } = request;
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${hostHeader(target)}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    if (body !== undefined) head += `content-length: ${Buffer.byteLength(body)}\r\n`;
    head += "\r\n";
    return new Promise((resolve, reject) => {
      connection.send(head, body, new Exchange(resolve, reject, request.timeoutMs));
    });
  }

  /** Closes every connection; requests on them fail as closed early. */
  close(): void {
    this.#retire();
    this.#lane = undefined;
    for (const connection of this.#open) connection.close();
  }

  #connect(lane: Lane): Connection {
    const connection = lane.open(this);
    this.#open.add(connection);
    return connection;
  }

  /** The old lane's idle connections close now, its busy ones once their answer is in. */
  #retire(): void {
    const lane = this.#lane;
    if (lane === undefined) return;
    for (const connection of lane.idle.splice(0)) connection.close();
  }

  /** A connection whose answer is in: kept for the next request, or closed if its lane is retired. */
  keep(connection: Connection): void {
    if (connection.lane !== this.#lane) {
      connection.close();
      return;
    }
    connection.park();
    connection.lane.idle.push(connection);
  }

  /** A closed connection leaves the pool. */
  forget(connection: Connection): void {
    this.#open.delete(connection);
    const idle = connection.lane.idle;
    const index = idle.indexOf(connection);
    if (index >= 0) idle.splice(index, 1);
  }
}
