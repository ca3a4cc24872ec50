// The operator's container image, built by buildah from the repository's unmodified Dockerfile and
// written as an OCI archive that `ctr -n k8s.io images import` loads. Docker Hub is out of reach, so
// the Dockerfile's base, node:24-bookworm-slim, is a stand-in made here: the project's Node.js 24,
// the libraries it links, the host's npm and busybox-static's sh. buildah's storage and layer cache
// live under .cache/operator-image/, so a rebuild with unchanged sources takes seconds.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import {
  chmod,
  cp,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  realpath,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { requireCommand } from "./commands.ts";
import { acquireLock } from "./machine-lock.ts";
import { repoRoot, requireBinary } from "./paths.ts";

const execFileAsync = promisify(execFile);

export const defaultOperatorImageReference = "localhost/ecr-creds-refresher:e2e";

/** The Dockerfile's FROM; buildah stores the stand-in as localhost/<it>, where --pull=never finds it. */
const baseImage = "node:24-bookworm-slim";
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Part of the stand-in's fingerprint: bump it when standInRootfs changes, to rebuild the stand-in. */
const standInRecipe = 2;

const cacheDir = join(repoRoot, ".cache", "operator-image");
const storageFlags = [
  "--root",
  join(cacheDir, "storage"),
  "--runroot",
  join(cacheDir, "run"),
  "--storage-driver",
  "overlay",
];

export interface OperatorImage {
  /** The image's name, as ctr lists it after the import. */
  readonly reference: string;
  /** An oci-archive tar of the image. */
  readonly archivePath: string;
}

/** The parts of an OCI image config the tests read. */
export interface ImageConfig {
  User?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
}

export interface UnpackedImage {
  readonly config: ImageConfig;
  /** The image's root filesystem, all layers applied, owned as in the image. */
  readonly rootfs: string;
  remove(): Promise<void>;
}

function commandFailed(command: string, args: readonly string[], err: unknown): Error {
  const { stdout, stderr } = err as { stdout?: unknown; stderr?: unknown };
  const output = [stdout, stderr]
    .filter((stream): stream is string => typeof stream === "string")
    .join("\n")
    .trim()
    .split("\n")
    .slice(-40)
    .join("\n");
  return new Error(`${command} ${args.join(" ")} failed:\n${output}`, { cause: err });
}

async function run(command: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, {
      env: { PATH: process.env.PATH },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    throw commandFailed(command, args, err);
  }
}

async function buildah(args: readonly string[]): Promise<string> {
  return (await run(requireCommand("buildah", "buildah"), [...storageFlags, ...args])).trim();
}

/** The shared libraries `binary` loads, as `ldd` resolves them on this host; none for a static binary. */
async function sharedLibraries(binary: string): Promise<string[]> {
  let output: string;
  try {
    output = (await execFileAsync("ldd", [binary])).stdout;
  } catch (err) {
    if (String((err as { stderr?: unknown }).stderr).includes("not a dynamic executable")) return [];
    throw commandFailed("ldd", [binary], err);
  }
  return [...output.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((match) => match[1] ?? "");
}

interface StandInParts {
  node: string;
  nodeVersion: string;
  npmPackage: string;
  npmVersion: string;
  busybox: string;
  libraries: string[];
}

async function standInParts(): Promise<StandInParts> {
  const node = await realpath(requireBinary(join(repoRoot, "node_modules", ".bin", "node")));
  const nodeVersion = (await run(node, ["--version"])).trim();
  if (!nodeVersion.startsWith("v24.")) {
    throw new Error(`${node} is Node.js ${nodeVersion}; the Dockerfile's base has 24: run scripts/setup.sh`);
  }
  // npm's bin/npm-cli.js, two levels below its package directory.
  const npmPackage = dirname(dirname(await realpath(requireCommand("npm", "npm"))));
  const npmManifest = JSON.parse(await readFile(join(npmPackage, "package.json"), "utf8")) as {
    name?: string;
    version?: string;
  };
  if (npmManifest.name !== "npm" || npmManifest.version === undefined) {
    throw new Error(`${npmPackage} is not npm's package directory`);
  }
  const busybox = requireCommand("busybox", "busybox-static");
  const libraries = [...new Set([...(await sharedLibraries(node)), ...(await sharedLibraries(busybox))])];
  return { node, nodeVersion, npmPackage, npmVersion: npmManifest.version, busybox, libraries };
}

/** What node:24-bookworm-slim gives the Dockerfile: node and npm on PATH, /bin/sh and the tools its RUN lines use, ldd, root, /tmp. */
async function standInRootfs(parts: StandInParts, rootfs: string): Promise<void> {
  const at = (path: string): string => join(rootfs, path);
  for (const dir of ["bin", "etc", "root", "tmp", "usr/bin", "usr/local/bin", "usr/local/lib/node_modules"]) {
    await mkdir(at(dir), { recursive: true });
  }
  await chmod(at("tmp"), 0o1777);
  await chmod(at("root"), 0o700);
  await cp(parts.node, at("usr/local/bin/node"));
  for (const library of parts.libraries) {
    await mkdir(at(dirname(library)), { recursive: true });
    await cp(library, at(library), { dereference: true });
  }
  await cp(parts.npmPackage, at("usr/local/lib/node_modules/npm"), {
    recursive: true,
    verbatimSymlinks: true,
  });
  await symlink("../lib/node_modules/npm/bin/npm-cli.js", at("usr/local/bin/npm"));
  // RUN lines are shell form and use the base's tools; npm-cli.js starts with `#!/usr/bin/env node`.
  await cp(parts.busybox, at("bin/busybox"));
  for (const tool of ["sh", "awk", "cp", "mkdir", "chmod", "dirname", "cat"]) {
    await symlink("busybox", at(`bin/${tool}`));
  }
  await symlink("../../bin/busybox", at("usr/bin/env"));
  // Debian's ldd is a script around the dynamic loader's --list; the same here.
  const loader = parts.libraries.find((library) => /\/ld-linux[^/]*\.so/.test(library));
  if (loader === undefined) throw new Error(`no dynamic loader among ${parts.libraries.join(", ")}`);
  await writeFile(at("usr/bin/ldd"), `#!/bin/sh\nexec ${loader} --list "$@"\n`, { mode: 0o755 });
  await writeFile(at("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  await writeFile(at("etc/group"), "root:x:0:\n");
}

async function localImageId(name: string): Promise<string | undefined> {
  const images = JSON.parse(await buildah(["images", "--json", "--no-trunc"])) as {
    id: string;
    names?: string[] | null;
  }[];
  return images.find((image) => image.names?.includes(name))?.id.replace(/^sha256:/, "");
}

/** Stores the stand-in base under the Dockerfile's FROM name, unless it is there and up to date. */
async function ensureStandInBase(): Promise<void> {
  const parts = await standInParts();
  const fingerprint = JSON.stringify({
    recipe: standInRecipe,
    node: parts.nodeVersion,
    npm: parts.npmVersion,
    libraries: parts.libraries,
  });
  const stampPath = join(cacheDir, "stand-in-base.json");
  if (existsSync(stampPath)) {
    const stamp = JSON.parse(await readFile(stampPath, "utf8")) as { fingerprint: string; imageId: string };
    if (
      stamp.fingerprint === fingerprint &&
      stamp.imageId === (await localImageId(`localhost/${baseImage}`))
    ) {
      return;
    }
  }

  // Everything stored derives from the previous stand-in: its layer cache can never be used again.
  await buildah(["rmi", "--all", "--force"]);
  const dir = await mkdtemp(join(tmpdir(), "ecr-stand-in-base-"));
  try {
    const rootfs = join(dir, "rootfs");
    await standInRootfs(parts, rootfs);
    const container = await buildah(["from", "--quiet", "scratch"]);
    try {
      await buildah(["copy", "--quiet", container, `${rootfs}/`, "/"]);
      await buildah([
        "config",
        "--env",
        `PATH=${basePath}`,
        "--env",
        `NODE_VERSION=${parts.nodeVersion.slice(1)}`,
        "--cmd",
        "node",
        container,
      ]);
      const imageId = await buildah(["commit", "--quiet", "--rm", container, baseImage]);
      await writeFile(stampPath, JSON.stringify({ fingerprint, imageId }));
    } catch (err) {
      await buildah(["rm", container]);
      throw err;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The host's npm cache, which the build's `npm ci` steps read offline. */
async function hostNpmCache(): Promise<string> {
  const npm = requireCommand("npm", "npm");
  const { stdout } = await execFileAsync(npm, ["config", "get", "cache"]);
  const cache = stdout.trim();
  if (!existsSync(join(cache, "_cacache"))) {
    throw new Error(
      `the npm cache ${cache} is empty: run npm ci in ${repoRoot} first (the image build is offline)`,
    );
  }
  return cache;
}

/** Test files run in parallel processes: one of them at a time builds in the shared storage. */
async function whileHoldingBuildLock<T>(work: () => Promise<T>): Promise<T> {
  const release = await acquireLock(join(cacheDir, "build.lock"), {
    what: "the operator image build",
    timeoutMs: 20 * 60_000,
  });
  try {
    return await work();
  } finally {
    await release();
  }
}

/**
 * Builds the Dockerfile (all stages, layer cache on, no network) and writes the image as an
 * oci-archive whose only manifest is named `reference`.
 */
export async function buildOperatorImage(options: { reference?: string } = {}): Promise<OperatorImage> {
  await mkdir(join(cacheDir, "archives"), { recursive: true });
  return whileHoldingBuildLock(() => build(options.reference ?? defaultOperatorImageReference));
}

async function build(reference: string): Promise<OperatorImage> {
  await ensureStandInBase();
  const npmCache = await hostNpmCache();
  const npmrc = join(cacheDir, "npmrc");
  await writeFile(npmrc, "offline=true\n");
  const pkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as { version: string };
  await buildah([
    "build",
    "--quiet",
    "--pull=never",
    "--layers",
    "--network=none",
    // Mounted for RUN steps only, so neither reaches the image. The cache is an overlay: the
    // production stage's `npm cache clean --force` must not empty the host's cache.
    `--volume=${npmCache}:/root/.npm:O`,
    `--volume=${npmrc}:/root/.npmrc:ro`,
    `--build-arg=VERSION=${pkg.version}`,
    "--file",
    join(repoRoot, "Dockerfile"),
    "--tag",
    reference,
    repoRoot,
  ]);
  const archivePath = join(cacheDir, "archives", `${reference.replaceAll(/[^A-Za-z0-9._-]/g, "_")}.tar`);
  const partial = `${archivePath}.partial`;
  await rm(partial, { force: true });
  await buildah(["push", "--quiet", reference, `oci-archive:${partial}:${reference}`]);
  await rename(partial, archivePath);
  return { reference, archivePath };
}

interface Descriptor {
  digest: string;
  annotations?: Record<string, string>;
}

async function readBlob<T>(layout: string, descriptor: Descriptor): Promise<T> {
  const [algorithm, hex] = descriptor.digest.split(":");
  if (algorithm === undefined || hex === undefined) throw new Error(`bad digest ${descriptor.digest}`);
  return JSON.parse(await readFile(join(layout, "blobs", algorithm, hex), "utf8")) as T;
}

/** Unpacks an OCI archive holding one image: its config and its root filesystem, via umoci. */
export async function unpackImage(archivePath: string): Promise<UnpackedImage> {
  const umoci = requireCommand("umoci", "umoci");
  const dir = await mkdtemp(join(tmpdir(), "ecr-operator-image-"));
  try {
    const layout = join(dir, "layout");
    await mkdir(layout);
    await run("tar", ["-xf", archivePath, "-C", layout]);
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as {
      manifests: Descriptor[];
    };
    const [manifestDescriptor, ...others] = index.manifests;
    const name = manifestDescriptor?.annotations?.["org.opencontainers.image.ref.name"];
    if (manifestDescriptor === undefined || others.length > 0 || name === undefined) {
      throw new Error(`${archivePath} does not hold exactly one named image`);
    }
    const manifest = await readBlob<{ config: Descriptor }>(layout, manifestDescriptor);
    const image = await readBlob<{ config?: ImageConfig }>(layout, manifest.config);
    const rootfs = join(dir, "rootfs");
    await run(umoci, ["raw", "unpack", "--image", `${layout}:${name}`, rootfs]);
    await rm(layout, { recursive: true });
    return {
      config: image.config ?? {},
      rootfs,
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Every path in the image's filesystem (files, directories, links), absolute and sorted. */
export async function imageFiles(archivePath: string): Promise<string[]> {
  const image = await unpackImage(archivePath);
  try {
    const entries = await readdir(image.rootfs, { recursive: true, withFileTypes: true });
    return entries.map((entry) => `/${relative(image.rootfs, join(entry.parentPath, entry.name))}`).sort();
  } finally {
    await image.remove();
  }
}
