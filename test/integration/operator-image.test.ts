// The operator image that buildah builds from the unmodified Dockerfile, checked by reading the
// built image (its config and its unpacked root filesystem) and by running the operator on the
// image's own node. test/e2e runs it on a real node.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
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
    assert.deepEqual(unpacked?.config.Entrypoint, ["node", ...imageNodeArgs(), "/app/dist/main.js"]);
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

  it("lists its files: node and the operator, no compiler", async () => {
    const files = await imageFiles(image.archivePath);
    assert.ok(files.includes("/usr/local/bin/node"));
    assert.ok(files.includes("/app/dist/main.js"));
    assert.ok(!files.some((file) => file.startsWith("/app/node_modules/typescript")));
  });
});
