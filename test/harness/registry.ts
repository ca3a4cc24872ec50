// A real container registry and client on loopback: Debian's docker-registry (distribution) with TLS
// and htpasswd auth, images pushed with umoci + skopeo (no external image needed), and skopeo to
// check that an auth file opens it. The Debian packages docker-registry, skopeo, umoci and
// apache2-utils (htpasswd) provide the commands; .ci/run installs them.
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createCertificateAuthority, issueCertificate } from "./certs.ts";
import { requireCommand } from "./commands.ts";
import { httpStatus } from "./http-wait.ts";
import { freePort } from "./ports.ts";
import { startProcess, whileRunning, type ManagedProcess } from "./processes.ts";
import { eventually } from "./wait.ts";

const run = promisify(execFile);

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface LocalRegistry {
  /** host:port, as it appears in image references and .dockerconfigjson keys, e.g. 127.0.0.1:40123. */
  readonly host: string;
  /** A directory holding the registry's CA as ca.crt, for skopeo's --cert-dir. */
  readonly certDir: string;
  readonly process: ManagedProcess;
  /** Pushes an empty image (umoci new) as `repository:tag` with these credentials. */
  pushEmptyImage(reference: string, credentials: RegistryCredentials): Promise<void>;
  /** Copies an image from a skopeo source (e.g. `oci:<layout>:<tag>`) to `repository:tag`. */
  pushImage(source: string, reference: string, credentials: RegistryCredentials): Promise<void>;
  /** Accepts exactly `users` from now on (the registry reads its htpasswd file at start: it restarts). */
  setUsers(users: readonly RegistryCredentials[]): Promise<void>;
  /** `skopeo inspect --authfile` of `repository:tag`: ok, or the reason skopeo gave. */
  inspect(reference: string, authFilePath: string): Promise<{ ok: true } | { ok: false; error: string }>;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** A loopback address to listen on; 127.0.0.1 by default. */
  address?: string;
  /** The port; a free one by default. 443 lets image references carry no port, as ECR's do. */
  port?: number;
  /** Host names the certificate is valid for besides the address, e.g. ECR hosts. */
  hostNames?: readonly string[];
}

/** Starts docker-registry on a loopback port, serving TLS and accepting exactly `users`. */
export async function startRegistry(
  users: readonly RegistryCredentials[],
  options: RegistryOptions = {},
): Promise<LocalRegistry> {
  const registryBin = requireCommand("docker-registry", "docker-registry");
  const htpasswdBin = requireCommand("htpasswd", "apache2-utils");
  const skopeoBin = requireCommand("skopeo", "skopeo");
  const umociBin = requireCommand("umoci", "umoci");

  const dir = await mkdtemp(join(tmpdir(), "ecr-registry-"));
  const address = options.address ?? "127.0.0.1";
  const port = options.port ?? (await freePort(address));
  const host = `${address}:${port}`;
  const ca = await createCertificateAuthority(dir, "ecr-creds-refresher-registry-ca");
  const serving = await issueCertificate(ca, {
    fileName: "registry",
    commonName: address,
    altNames: [`IP:${address}`, ...(options.hostNames ?? []).map((name) => `DNS:${name}`)],
    usage: "server",
  });
  const certDir = join(dir, "certs");
  await mkdir(certDir);
  await copyFile(ca.certPath, join(certDir, "ca.crt"));

  const htpasswdPath = join(dir, "htpasswd");
  const writeUsers = async (accepted: readonly RegistryCredentials[]): Promise<void> => {
    await writeFile(htpasswdPath, "", { mode: 0o600 });
    for (const user of accepted) {
      await run(htpasswdBin, ["-B", "-b", htpasswdPath, user.username, user.password]);
    }
  };
  await writeUsers(users);
  const configPath = join(dir, "config.yml");
  await writeFile(
    configPath,
    JSON.stringify({
      version: 0.1,
      log: { level: "warn" },
      storage: { filesystem: { rootdirectory: join(dir, "data") } },
      http: { addr: host, tls: { certificate: serving.certPath, key: serving.keyPath } },
      auth: { htpasswd: { realm: "ecr-creds-refresher-test", path: htpasswdPath } },
    }),
  );

  const serve = async (): Promise<ManagedProcess> => {
    const started = startProcess(
      "docker-registry",
      registryBin,
      ["serve", configPath],
      join(dir, "registry.log"),
      { env: { PATH: process.env.PATH } },
    );
    try {
      // 401 on /v2/ means it serves TLS and asks for credentials.
      await whileRunning(
        started,
        eventually(
          async () => {
            const status = await httpStatus(`https://${host}/v2/`, { ca: ca.certPem });
            if (status !== 401) throw new Error(`/v2/ answered ${status}`);
          },
          { timeoutMs: 30_000, message: `docker-registry on ${host}` },
        ),
      );
    } catch (err) {
      await started.stop();
      throw err;
    }
    return started;
  };
  let proc: ManagedProcess;
  try {
    proc = await serve();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  // skopeo must not find credentials anywhere but where a test points it.
  const toolEnv = { PATH: process.env.PATH, HOME: dir, XDG_RUNTIME_DIR: dir };
  let images = 0;
  const pushImage = async (
    source: string,
    reference: string,
    credentials: RegistryCredentials,
  ): Promise<void> => {
    await run(
      skopeoBin,
      [
        "copy",
        "--insecure-policy",
        "--dest-cert-dir",
        certDir,
        "--dest-creds",
        `${credentials.username}:${credentials.password}`,
        source,
        `docker://${host}/${reference}`,
      ],
      { env: toolEnv },
    );
  };
  return {
    host,
    certDir,
    get process() {
      return proc;
    },
    async pushEmptyImage(reference, credentials) {
      images += 1;
      const layout = join(dir, `image-${images}`);
      await run(umociBin, ["init", "--layout", layout], { env: toolEnv });
      await run(umociBin, ["new", "--image", `${layout}:latest`], { env: toolEnv });
      await pushImage(`oci:${layout}:latest`, reference, credentials);
    },
    pushImage,
    async setUsers(accepted) {
      await writeUsers(accepted);
      await proc.stop();
      proc = await serve();
    },
    async inspect(reference, authFilePath) {
      try {
        await run(
          skopeoBin,
          ["inspect", "--authfile", authFilePath, "--cert-dir", certDir, `docker://${host}/${reference}`],
          { env: toolEnv },
        );
        return { ok: true };
      } catch (err) {
        const stderr = (err as { stderr?: unknown }).stderr;
        return { ok: false, error: typeof stderr === "string" ? stderr.trim() : String(err) };
      }
    },
    async stop() {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
