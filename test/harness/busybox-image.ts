// Small images made on this machine from Debian's busybox-static, so that the node needs nothing
// from a public registry: the sandbox ("pause") image, and the application image Pods pull from
// the registry posing as ECR. umoci writes them as OCI layouts; skopeo copies them on.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { requireCommand } from "./commands.ts";

const run = promisify(execFile);

/** Applets the images link to busybox: enough for `sh -c`, `sleep` and `cat`. */
const applets = ["sh", "sleep", "cat", "echo", "ls", "true", "false", "id", "wget"];

export interface BusyboxImages {
  /** An OCI layout directory holding the tags `pause` and `app`. */
  readonly layout: string;
  /** `oci:<layout>:<tag>`, a skopeo source. */
  source(tag: "pause" | "app"): string;
  remove(): Promise<void>;
}

/**
 * Builds both images. `pause` runs `sleep infinity` as the sandbox process; `app` has no
 * entrypoint, so `kubectl run ... -- sleep 5` runs busybox's sleep, as with alpine.
 */
export async function buildBusyboxImages(): Promise<BusyboxImages> {
  const busybox = requireCommand("busybox", "busybox-static");
  const umoci = requireCommand("umoci", "umoci");
  const dir = await mkdtemp(join(tmpdir(), "ecr-busybox-image-"));
  try {
    const rootfs = join(dir, "rootfs");
    await mkdir(join(rootfs, "bin"), { recursive: true });
    await mkdir(join(rootfs, "tmp"));
    await copyFile(busybox, join(rootfs, "bin", "busybox"));
    for (const applet of applets) await symlink("busybox", join(rootfs, "bin", applet));

    const layout = join(dir, "layout");
    const env = { PATH: process.env.PATH, HOME: dir };
    await run(umoci, ["init", "--layout", layout], { env });
    const images: [tag: string, config: string[]][] = [
      ["pause", ["--config.entrypoint", "/bin/sleep", "--config.cmd", "infinity"]],
      ["app", ["--config.cmd", "sh"]],
    ];
    for (const [tag, config] of images) {
      await run(umoci, ["new", "--image", `${layout}:${tag}`], { env });
      await run(umoci, ["insert", "--image", `${layout}:${tag}`, rootfs, "/"], { env });
      await run(umoci, ["config", "--image", `${layout}:${tag}`, "--config.env", "PATH=/bin", ...config], {
        env,
      });
    }
    return {
      layout,
      source: (tag) => `oci:${layout}:${tag}`,
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
