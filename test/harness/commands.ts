// The machine's commands the harness runs (registry, node, image builder), found on PATH or
// refused at once with the Debian package and the command that installs it.
import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Finds a command on PATH (and in the sbin folders root has), or fails naming the Debian package. */
export function requireCommand(name: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (dir !== "" && existsSync(candidate)) return candidate;
  }
  throw new Error(
    `${name} is not installed: run \`apt-get install ${debianPackage}\` as root (npm test does it when run as root)`,
  );
}
