import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent as HttpsAgent, createServer, request, type RequestOptions } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { after, before, describe, it } from "node:test";

import { createCertificateAuthority, issueCertificate, type KeyPair } from "../../../test/harness/certs.ts";
import { TlsPool } from "./tls-pool.ts";

const pem = (label: string, fill: string): string =>
  `-----BEGIN ${label}-----\n${fill.repeat(1200)}\n-----END ${label}-----\n`;

describe("TlsPool.getName", () => {
  const ca = Buffer.from(pem("CERTIFICATE", "A"));
  const cert = Buffer.from(pem("CERTIFICATE", "B"));
  const key = Buffer.from(pem("PRIVATE KEY", "C"));
  const renewedCert = pem("CERTIFICATE", "D");
  const base: RequestOptions = { host: "127.0.0.1", port: 6443, ca, cert, key, rejectUnauthorized: true };

  // Pairs of requests: the pool puts them on the same connections exactly when Node's agent does.
  const pairs: { name: string; a: RequestOptions; b: RequestOptions }[] = [
    { name: "the same material", a: base, b: { ...base } },
    { name: "another client certificate", a: base, b: { ...base, cert: renewedCert } },
    { name: "another key", a: base, b: { ...base, key: pem("PRIVATE KEY", "E") } },
    { name: "another CA", a: base, b: { ...base, ca: pem("CERTIFICATE", "F") } },
    { name: "no client certificate", a: base, b: { ...base, cert: undefined, key: undefined } },
    { name: "another port", a: base, b: { ...base, port: 6444 } },
    { name: "another server name", a: base, b: { ...base, servername: "kubernetes.internal" } },
    { name: "verification off", a: base, b: { ...base, rejectUnauthorized: false } },
    { name: "a server name equal to the host", a: base, b: { ...base, servername: "127.0.0.1" } },
    { name: "another local address", a: base, b: { ...base, localAddress: "127.0.0.2" } },
    { name: "IPv6 only", a: base, b: { ...base, family: 6 } },
    { name: "another cipher list", a: base, b: { ...base, ciphers: "TLS_AES_256_GCM_SHA384" } },
    {
      name: "the same cipher list",
      a: { ...base, ciphers: "TLS_AES_256_GCM_SHA384" },
      b: { ...base, ciphers: "TLS_AES_256_GCM_SHA384" },
    },
    {
      name: "a renewed certificate with the same text, as a new string",
      a: { ...base, cert: renewedCert },
      b: { ...base, cert: pem("CERTIFICATE", "D") },
    },
  ];
  for (const { name, a, b } of pairs) {
    it(`shares connections as Node's agent does: ${name}`, () => {
      const node = new HttpsAgent();
      const pool = new TlsPool();
      assert.equal(pool.getName(a) === pool.getName(b), node.getName(a) === node.getName(b));
    });
  }

  it("names the material by a number, not by its text", () => {
    const name = new TlsPool().getName(base);
    assert.ok(name.length < 100, `a name of ${name.length} characters`);
    assert.ok(!name.includes("BEGIN"));
  });

  it("gives material seen again after 64 others a new number", () => {
    const pool = new TlsPool();
    const first = pool.getName(base);
    assert.equal(pool.getName({ ...base }), first);
    for (let i = 0; i < 64; i++)
      pool.getName({ ...base, cert: pem("CERTIFICATE", String(i % 10).repeat(i + 1)) });
    assert.notEqual(pool.getName(base), first);
  });
});

describe("TlsPool with a server that checks the client certificate", () => {
  let dir: string;
  let ca: KeyPair;
  let serving: KeyPair;
  let alice: KeyPair;
  let bob: KeyPair;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tls-pool-"));
    const authority = await createCertificateAuthority(dir);
    ca = authority;
    serving = await issueCertificate(authority, {
      fileName: "server",
      commonName: "kube-apiserver",
      altNames: ["IP:127.0.0.1"],
      usage: "server",
    });
    alice = await issueCertificate(authority, { fileName: "alice", commonName: "alice", usage: "client" });
    bob = await issueCertificate(authority, { fileName: "bob", commonName: "bob", usage: "client" });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps one connection for one identity and opens another for a new certificate", async (t) => {
    let connections = 0;
    const server = createServer(
      { cert: serving.certPem, key: serving.keyPem, ca: ca.certPem, requestCert: true },
      (req, res) => {
        res.end((req.socket as TLSSocket).getPeerCertificate().subject.CN);
      },
    );
    server.on("secureConnection", () => (connections += 1));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const pool = new TlsPool({ keepAlive: true, ca: Buffer.from(ca.certPem) });
    t.after(() => {
      pool.destroy();
      server.closeAllConnections();
      server.close();
    });
    const { port } = server.address() as AddressInfo;
    const aliceMaterial = { cert: Buffer.from(alice.certPem), key: Buffer.from(alice.keyPem) };
    const get = (material: { cert: Buffer | string; key: Buffer | string }): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path: "/", agent: pool, ...material }, (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => {
            resolve(text);
          });
        });
        req.on("error", reject);
        req.end();
      });

    const seen: string[] = [];
    for (let i = 0; i < 5; i++) seen.push(await get(aliceMaterial));
    assert.equal(connections, 1);
    seen.push(await get({ cert: bob.certPem, key: bob.keyPem }));
    assert.equal(connections, 2);
    seen.push(await get(aliceMaterial));
    assert.equal(connections, 2);
    assert.deepEqual(seen, ["alice", "alice", "alice", "alice", "alice", "bob", "alice"]);
  });
});
