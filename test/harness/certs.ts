// A private CA for the local control plane: serving certificates, client
// certificates for any user and groups (RBAC tests), and the service-account
// signing key. Signing uses the openssl command line.
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface KeyPair {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

export interface CertificateAuthority extends KeyPair {
  dir: string;
}

function ecKeyPem(): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

function subject(commonName: string, organizations: readonly string[]): string {
  const escape = (value: string): string => value.replace(/[/\\=+,]/g, (c) => `\\${c}`);
  return `/CN=${escape(commonName)}${organizations.map((o) => `/O=${escape(o)}`).join("")}`;
}

export async function createCertificateAuthority(
  dir: string,
  name = "ecr-creds-refresher-test-ca",
): Promise<CertificateAuthority> {
  const keyPath = join(dir, "ca.key");
  const certPath = join(dir, "ca.crt");
  const keyPem = ecKeyPem();
  await writeFile(keyPath, keyPem, { mode: 0o600 });
  await run("openssl", [
    "req",
    "-x509",
    "-new",
    "-key",
    keyPath,
    "-out",
    certPath,
    "-days",
    "7",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  return { dir, keyPath, certPath, keyPem, certPem: await readFile(certPath, "utf8") };
}

export interface CertificateRequest {
  fileName: string;
  commonName: string;
  organizations?: readonly string[];
  /** Subject alternative names such as "IP:127.0.0.1" or "DNS:localhost". */
  altNames?: readonly string[];
  usage: "server" | "client";
}

export async function issueCertificate(
  ca: CertificateAuthority,
  request: CertificateRequest,
): Promise<KeyPair> {
  const base = join(ca.dir, request.fileName);
  const keyPath = `${base}.key`;
  const csrPath = `${base}.csr`;
  const certPath = `${base}.crt`;
  const extPath = `${base}.ext`;
  const keyPem = ecKeyPem();
  await writeFile(keyPath, keyPem, { mode: 0o600 });
  const extensions = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    `extendedKeyUsage=${request.usage === "server" ? "serverAuth" : "clientAuth"}`,
  ];
  if (request.altNames !== undefined && request.altNames.length > 0) {
    extensions.push(`subjectAltName=${request.altNames.join(",")}`);
  }
  await writeFile(extPath, `${extensions.join("\n")}\n`);
  await run("openssl", [
    "req",
    "-new",
    "-key",
    keyPath,
    "-out",
    csrPath,
    "-subj",
    subject(request.commonName, request.organizations ?? []),
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    csrPath,
    "-CA",
    ca.certPath,
    "-CAkey",
    ca.keyPath,
    "-CAcreateserial",
    "-out",
    certPath,
    "-days",
    "7",
    "-extfile",
    extPath,
  ]);
  return { keyPath, certPath, keyPem, certPem: await readFile(certPath, "utf8") };
}

export async function createServiceAccountSigningKey(
  dir: string,
): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const privateKeyPath = join(dir, "sa.key");
  const publicKeyPath = join(dir, "sa.pub");
  await writeFile(privateKeyPath, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await writeFile(publicKeyPath, publicKey.export({ type: "spki", format: "pem" }));
  return { privateKeyPath, publicKeyPath };
}
