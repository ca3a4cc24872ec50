// The layout of the self-managed webhook Secret: `ca.crt` is the trust bundle (every CA still
// trusted, oldest first; the webhook configuration's caBundle), `ca.key` the key of the newest CA,
// which signs, and `tls.crt` / `tls.key` the serving certificate. Reading it into the facts the
// rotation plan needs, and building the data to write.
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import type { CertificateFacts, ServingFacts, TlsState } from "./certificates.ts";

export const CA_BUNDLE_KEY = "ca.crt";
export const CA_KEY_KEY = "ca.key";
export const SERVING_CERT_KEY = "tls.crt";
export const SERVING_KEY_KEY = "tls.key";

/** The Secret's data, decoded. */
export type TlsSecretData = Partial<Record<string, string>>;

export interface ParsedTlsSecret {
  state: TlsState;
  /** The CA certificates of the bundle by fingerprint, as PEM. */
  caPems: Map<string, string>;
  /** The serving certificate and key, when both are present and belong together. */
  serving: { certPem: string; keyPem: string; notAfter: number } | undefined;
  signingCa: { certPem: string; keyPem: string } | undefined;
}

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function decodeSecretData(data: Readonly<Record<string, string>> | undefined): TlsSecretData {
  const decoded: TlsSecretData = {};
  for (const [key, value] of Object.entries(data ?? {}))
    decoded[key] = Buffer.from(value, "base64").toString();
  return decoded;
}

export function encodeSecretData(data: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
}

/** The certificates in a PEM bundle; unreadable blocks are left out. */
export function parseBundle(pem: string | undefined): X509Certificate[] {
  const certificates: X509Certificate[] = [];
  for (const block of (pem ?? "").match(pemBlock) ?? []) {
    try {
      certificates.push(new X509Certificate(block));
    } catch (err) {
      if (!(err instanceof Error)) throw err;
    }
  }
  return certificates;
}

function facts(cert: X509Certificate): CertificateFacts {
  return {
    fingerprint: cert.fingerprint256,
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
  };
}

function publicKeyOf(keyPem: string | undefined): string | undefined {
  if (keyPem === undefined) return undefined;
  try {
    return createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "pem" }).toString();
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    return undefined;
  }
}

function samePublicKey(cert: X509Certificate, keyPem: string | undefined): boolean {
  const fromKey = publicKeyOf(keyPem);
  return (
    fromKey !== undefined && cert.publicKey.export({ type: "spki", format: "pem" }).toString() === fromKey
  );
}

export function coversHosts(cert: X509Certificate, hosts: readonly string[]): boolean {
  return hosts.every((host) =>
    isIP(host) === 0 ? cert.checkHost(host, { wildcards: false }) === host : cert.checkIP(host) === host,
  );
}

export function parseTlsSecret(data: TlsSecretData, hosts: readonly string[]): ParsedTlsSecret {
  const cas = parseBundle(data[CA_BUNDLE_KEY]).filter((cert) => cert.ca);
  const caPems = new Map(cas.map((cert) => [cert.fingerprint256, cert.toString()]));
  const newest = cas.at(-1);
  const signing = newest !== undefined && samePublicKey(newest, data[CA_KEY_KEY]) ? newest : undefined;

  const [leaf] = parseBundle(data[SERVING_CERT_KEY]);
  let serving: ServingFacts | undefined;
  let servingPair: ParsedTlsSecret["serving"];
  if (leaf !== undefined && samePublicKey(leaf, data[SERVING_KEY_KEY])) {
    const issuer = cas.find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    serving = { ...facts(leaf), issuer: issuer?.fingerprint256, coversHosts: coversHosts(leaf, hosts) };
    servingPair = {
      certPem: data[SERVING_CERT_KEY] ?? "",
      keyPem: data[SERVING_KEY_KEY] ?? "",
      notAfter: serving.notAfter,
    };
  }
  return {
    state: { cas: cas.map(facts), signingCa: signing?.fingerprint256, serving },
    caPems,
    serving: servingPair,
    signingCa:
      signing === undefined ? undefined : { certPem: signing.toString(), keyPem: data[CA_KEY_KEY] ?? "" },
  };
}

/** The CA fingerprints a caBundle (base64 PEM, as in a webhook configuration) holds. */
export function bundleFingerprints(caBundle: string | undefined): string[] {
  return parseBundle(Buffer.from(caBundle ?? "", "base64").toString()).map((c) => c.fingerprint256);
}
