// Issues the self-managed webhook CA and serving certificates in pure JavaScript: keys from
// node:crypto, certificates built and signed by node-forge (the image has no openssl). node-forge
// is loaded on first use only, so replicas that never issue do not carry its ~11 MB.
import { generateKeyPair, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { promisify } from "node:util";
import type * as forgeTypes from "node-forge";

const generateRsaKeyPair = promisify(generateKeyPair);

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export interface Validity {
  notBefore: number;
  notAfter: number;
}

type Forge = typeof forgeTypes;

let forgeModule: Promise<Forge> | undefined;

function loadForge(): Promise<Forge> {
  forgeModule ??= import("node-forge").then(
    (m) => m.default,
    (err: unknown) => {
      // Not cached: the next issue tries the import again.
      forgeModule = undefined;
      throw err;
    },
  );
  return forgeModule;
}

async function rsaKeyPem(): Promise<string> {
  const { privateKey } = await generateRsaKeyPair("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return privateKey;
}

/** A positive 128-bit serial number, as hex. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString("hex");
}

async function blankCertificate(keyPem: string, validity: Validity) {
  const forge = await loadForge();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(validity.notBefore);
  cert.validity.notAfter = new Date(validity.notAfter);
  return { forge, cert };
}

export async function issueCa(commonName: string, validity: Validity): Promise<IssuedCertificate> {
  const keyPem = await rsaKeyPem();
  const { forge, cert } = await blankCertificate(keyPem, validity);
  const subject = [{ name: "commonName", value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** A serving certificate for `hosts` (DNS names and IP addresses), signed by `ca`. */
export async function issueServing(
  ca: IssuedCertificate,
  hosts: readonly string[],
  validity: Validity,
): Promise<IssuedCertificate> {
  const keyPem = await rsaKeyPem();
  const { forge, cert } = await blankCertificate(keyPem, validity);
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  cert.setSubject([{ name: "commonName", value: hosts[0] ?? "ecr-creds-refresher-webhook" }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: hosts.map((host) => (isIP(host) === 0 ? { type: 2, value: host } : { type: 7, ip: host })),
    },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}
