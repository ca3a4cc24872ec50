// The keep-alive pool of HTTPS connections to one cluster.
import { Agent as HttpsAgent, type RequestOptions } from "node:https";

import { http } from "../../node-http.ts";

/** Fields of Node's pool key besides the numbered material; with any of them, Node's own key is used. */
const otherKeyFields = [
  "clientCertEngine",
  "ciphers",
  "pfx",
  "minVersion",
  "maxVersion",
  "secureProtocol",
  "crl",
  "honorCipherOrder",
  "ecdhCurve",
  "dhparam",
  "secureOptions",
  "sessionIdContext",
  "sigalgs",
  "privateKeyIdentifier",
  "privateKeyEngine",
] as const;
const maxNumberedMaterial = 64;

/**
 * An https.Agent whose pool keys name the CA, client certificate and key by a number instead of
 * their text. Node's https.Agent builds the key by concatenating all three (decoding each Buffer
 * again) several times per request and looks it up in its tables: at thousands of requests a
 * second that was a tenth of the operator's CPU and much of its garbage. The same material (the
 * same Buffer, or a string with the same text) keeps its number and new material (an exec plugin's
 * renewed certificate) gets a new one, so requests share connections as with Node's key (two
 * Buffers with the same bytes count as different material). The key has the rest of what Node's
 * has for the options the cluster connection sets: host, port, local address, family, socket path,
 * server name and whether the server is verified.
 */
export class TlsPool extends HttpsAgent {
  readonly #numbers = new Map<unknown, number>();
  #next = 0;

  override getName(options: RequestOptions = {}): string {
    if (otherKeyFields.some((field) => options[field] !== undefined)) return super.getName(options);
    const servername =
      options.servername !== undefined && options.servername !== options.host ? options.servername : "";
    const material = `${this.#numberOf(options.ca)}:${this.#numberOf(options.cert)}:${this.#numberOf(options.key)}`;
    // Host, port, local address, family and socket path, as Node's http.Agent writes them.
    const endpoint = http.Agent.prototype.getName.call(this, options);
    return `${endpoint}:${material}:${String(options.rejectUnauthorized)}:${servername}`;
  }

  #numberOf(material: unknown): number {
    if (material === undefined) return 0;
    const known = this.#numbers.get(material);
    if (known !== undefined) return known;
    // Oldest first out: material seen again after that gets a new number, and a new connection.
    if (this.#numbers.size >= maxNumberedMaterial) {
      const oldest = this.#numbers.keys().next();
      if (oldest.done !== true) this.#numbers.delete(oldest.value);
    }
    this.#next += 1;
    this.#numbers.set(material, this.#next);
    return this.#next;
  }
}
