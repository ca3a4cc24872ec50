import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createServer } from "node:https";
import { request } from "node:https";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";

import { rotationPolicy, validityWindow } from "./certificates.ts";
import {
  bundleFingerprints,
  CA_BUNDLE_KEY,
  CA_KEY_KEY,
  decodeSecretData,
  encodeSecretData,
  parseTlsSecret,
  SERVING_CERT_KEY,
  SERVING_KEY_KEY,
} from "./tls-secret.ts";
import { issueCa, issueServing } from "./x509.ts";

const hosts = ["ecr-creds-refresher-webhook.ecr-system.svc", "127.0.0.1"];
const policy = rotationPolicy(3_600_000);
const now = Date.now();

async function handshake(
  certPem: string,
  keyPem: string,
  caPem: string,
  servername?: string,
): Promise<number> {
  const server = createServer({ cert: certPem, key: keyPem }, (_req, res) => {
    res.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<number>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, ca: caPem, servername, path: "/" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
  } finally {
    server.close();
    server.closeAllConnections();
  }
}

describe("issued certificates", () => {
  it("makes a CA and a serving certificate for DNS names and IP addresses that TLS clients accept", async () => {
    const ca = await issueCa("test CA", validityWindow(now, policy.caValidityMs, policy));
    const leaf = await issueServing(ca, hosts, validityWindow(now, policy.servingValidityMs, policy));
    const caCert = new X509Certificate(ca.certPem);
    const leafCert = new X509Certificate(leaf.certPem);
    assert.equal(caCert.ca, true);
    assert.equal(leafCert.ca, false);
    assert.ok(leafCert.checkIssued(caCert) && leafCert.verify(caCert.publicKey));
    assert.equal(leafCert.checkHost(hosts[0] ?? ""), hosts[0]);
    assert.equal(leafCert.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(leafCert.checkHost("other.example"), undefined);
    assert.equal(Date.parse(leafCert.validTo), Math.floor((now + policy.servingValidityMs) / 1000) * 1000);
    assert.equal(await handshake(leaf.certPem, leaf.keyPem, ca.certPem), 200);
    assert.equal(await handshake(leaf.certPem, leaf.keyPem, ca.certPem, hosts[0]), 200);
    const stranger = await issueCa("another CA", validityWindow(now, policy.caValidityMs, policy));
    await assert.rejects(
      handshake(leaf.certPem, leaf.keyPem, stranger.certPem),
      /self-signed|unable to verify/,
    );
  });
});

describe("parseTlsSecret", () => {
  it("reads the trust bundle, the signing CA and the serving certificate's issuer", async () => {
    const old = await issueCa("old CA", validityWindow(now, policy.caValidityMs, policy));
    const current = await issueCa("current CA", validityWindow(now, policy.caValidityMs, policy));
    const leaf = await issueServing(old, hosts, validityWindow(now, policy.servingValidityMs, policy));
    const data = decodeSecretData(
      encodeSecretData({
        [CA_BUNDLE_KEY]: `${old.certPem}${current.certPem}`,
        [CA_KEY_KEY]: current.keyPem,
        [SERVING_CERT_KEY]: leaf.certPem,
        [SERVING_KEY_KEY]: leaf.keyPem,
      }),
    );
    const parsed = parseTlsSecret(data, hosts);
    const [oldFp, currentFp] = [old, current].map((c) => new X509Certificate(c.certPem).fingerprint256);
    assert.deepEqual(
      parsed.state.cas.map((c) => c.fingerprint),
      [oldFp, currentFp],
    );
    assert.equal(parsed.state.signingCa, currentFp);
    assert.equal(parsed.state.serving?.issuer, oldFp);
    assert.equal(parsed.state.serving?.coversHosts, true);
    assert.equal(parsed.serving?.keyPem, leaf.keyPem);
    assert.equal(parseTlsSecret(data, ["elsewhere.svc"]).state.serving?.coversHosts, false);
    assert.deepEqual(bundleFingerprints(Buffer.from(data[CA_BUNDLE_KEY] ?? "").toString("base64")), [
      oldFp,
      currentFp,
    ]);
  });

  it("has no signing CA when ca.key is not the newest CA's key, and no serving pair when the key does not match", async () => {
    const first = await issueCa("first", validityWindow(now, policy.caValidityMs, policy));
    const second = await issueCa("second", validityWindow(now, policy.caValidityMs, policy));
    const leaf = await issueServing(first, hosts, validityWindow(now, policy.servingValidityMs, policy));
    const parsed = parseTlsSecret(
      {
        [CA_BUNDLE_KEY]: `${first.certPem}${second.certPem}`,
        [CA_KEY_KEY]: first.keyPem,
        [SERVING_CERT_KEY]: leaf.certPem,
        [SERVING_KEY_KEY]: second.keyPem,
      },
      hosts,
    );
    assert.equal(parsed.state.signingCa, undefined);
    assert.equal(parsed.signingCa, undefined);
    assert.equal(parsed.state.serving, undefined);
    assert.equal(parsed.serving, undefined);
  });

  it("reads an empty or garbled Secret as holding nothing", () => {
    for (const data of [
      {},
      { [CA_BUNDLE_KEY]: "not a certificate", [CA_KEY_KEY]: "nor a key", [SERVING_CERT_KEY]: "x" },
    ]) {
      const parsed = parseTlsSecret(data, hosts);
      assert.deepEqual(parsed.state, { cas: [], signingCa: undefined, serving: undefined });
    }
  });
});
