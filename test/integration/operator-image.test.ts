// The operator image that buildah builds from the unmodified Dockerfile, checked by reading the
// built image (its config, its file list and its unpacked root filesystem) and by running the
// operator on the image's own node: no shell, package manager or npm, and an SBOM that lists what
// it ships. test/e2e runs it on a real node.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { requireCommand } from "../harness/commands.ts";
import { imageNodeArgs } from "../harness/image.ts";
import {
  buildOperatorImage,
  imageFiles,
  unpackImage,
  type OperatorImage,
  type UnpackedImage,
} from "../harness/operator-image.ts";
import { repoRoot } from "../harness/paths.ts";

const execFileAsync = promisify(execFile);

/** Runs the image's entrypoint with `args` in its root filesystem, as the image's user, with its env. */
async function runEntrypoint(image: UnpackedImage, args: string[]): Promise<string> {
  const chroot = requireCommand("chroot", "coreutils");
  const { User: user, Entrypoint: entrypoint = [], Env: env = [] } = image.config;
  assert.ok(user !== undefined, "the image names no user");
  const environment = Object.fromEntries(
    env.map((variable) => [
      variable.slice(0, variable.indexOf("=")),
      variable.slice(variable.indexOf("=") + 1),
    ]),
  );
  // chroot looks `node` up on the image's PATH, inside the image's root filesystem.
  const { stdout } = await execFileAsync(
    chroot,
    [`--userspec=${user}`, image.rootfs, ...entrypoint, ...args],
    { env: environment },
  );
  return stdout;
}

describe("the operator image built by buildah from the Dockerfile", () => {
  let image: OperatorImage;
  let unpacked: UnpackedImage | undefined;

  before(async () => {
    image = await buildOperatorImage();
    unpacked = await unpackImage(image.archivePath);
  });

  after(async () => {
    await unpacked?.remove();
  });

  it("runs as 65532:65532", () => {
    assert.equal(unpacked?.config.User, "65532:65532");
  });

  it("starts the Dockerfile's entrypoint", () => {
    assert.deepEqual(unpacked?.config.Entrypoint, [
      "/usr/local/bin/node",
      ...imageNodeArgs(),
      "/app/dist/main.js",
    ]);
  });

  it("holds the compiled operator and its production dependencies, not its dev dependencies", () => {
    assert.ok(unpacked !== undefined);
    assert.ok(existsSync(join(unpacked.rootfs, "app", "dist", "main.js")));
    assert.ok(existsSync(join(unpacked.rootfs, "app", "node_modules", "pino")));
    assert.ok(!existsSync(join(unpacked.rootfs, "app", "node_modules", "typescript")));
  });

  it("prints the operator's help and version when run on the image's own node", async () => {
    assert.ok(unpacked !== undefined);
    const help = await runEntrypoint(unpacked, ["--help"]);
    assert.match(help, /^Usage: ecr-creds-refresher /);
    assert.match(help, /run \[options\] +run the controller/);
    const pkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as { version: string };
    assert.equal((await runEntrypoint(unpacked, ["--version"])).trim(), pkg.version);
  });

  it("has no shell, package manager or npm: only node, its libraries and the operator", async () => {
    const files = await imageFiles(image.archivePath);
    assert.ok(files.includes("/usr/local/bin/node"));
    assert.ok(files.includes("/app/dist/main.js"));
    const forbidden =
      /\/(sh|bash|dash|ash|busybox|apt|apt-get|dpkg|npm|npx|corepack|yarn)$|\/node_modules\/npm\//;
    assert.deepEqual(
      files.filter((file) => forbidden.test(file)),
      [],
      "no shell, package manager or npm in the image",
    );
    assert.ok(unpacked !== undefined);
    const entries = await readdir(unpacked.rootfs, { recursive: true, withFileTypes: true });
    const root = unpacked.rootfs;
    const outsideApp = entries
      .filter((entry) => !entry.isDirectory())
      .map((entry) => `/${relative(root, join(entry.parentPath, entry.name))}`)
      .filter((file) => !file.startsWith("/app/"));
    const expected =
      /^\/(usr\/local\/bin\/node|etc\/passwd|etc\/group|(usr\/)?lib(64)?\/[^/]+(\/[^/]+)?\.so(\.\d+)*)$/;
    assert.deepEqual(
      outsideApp.filter((file) => !expected.test(file)),
      [],
      "outside /app only node, the shared libraries it links, passwd and group",
    );
    assert.ok(!files.some((file) => file.startsWith("/app/node_modules/typescript")));
  });

  it("ships an SBOM that lists every package in its node_modules", async () => {
    assert.ok(unpacked !== undefined);
    const sbom = JSON.parse(await readFile(join(unpacked.rootfs, "app", "sbom.cdx.json"), "utf8")) as {
      bomFormat: string;
      components?: { name: string; version: string; purl?: string }[];
    };
    assert.equal(sbom.bomFormat, "CycloneDX");
    const listed = new Set((sbom.components ?? []).map((c) => `${c.name}@${c.version}`));
    const installed = await installedPackages(join(unpacked.rootfs, "app", "node_modules"));
    assert.ok(installed.length > 10, `found ${String(installed.length)} packages`);
    assert.deepEqual(
      installed.filter((pkg) => !listed.has(pkg)),
      [],
      "every installed package is in the SBOM",
    );
  });
});

/** name@version of every package folder under `nodeModules`, nested ones included. */
async function installedPackages(nodeModules: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(nodeModules, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (entry.name !== "package.json" || !entry.isFile()) continue;
    const dir = entry.parentPath;
    const parent = dirname(dir);
    const inNodeModules =
      basename(parent) === "node_modules" ||
      (basename(dirname(parent)) === "node_modules" && basename(parent).startsWith("@"));
    if (!inNodeModules) continue;
    const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as {
      name?: string;
      version?: string;
    };
    if (manifest.name !== undefined && manifest.version !== undefined)
      found.push(`${manifest.name}@${manifest.version}`);
  }
  return [...new Set(found)].sort();
}
