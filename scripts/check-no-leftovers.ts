// Fails when a process started by the test harness (etcd, kube-apiserver,
// kube-controller-manager, moto) outlived the test run. Processes owned by a
// running local environment (scripts/dev.ts serve) are not counted.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../test/harness/paths.ts";

const marker = join(repoRoot, ".cache") + "/";

function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

function parentPid(pid: string): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? "";
  } catch {
    return "";
  }
}

const leftovers = readdirSync("/proc")
  .filter((entry) => /^\d+$/.test(entry) && entry !== String(process.pid))
  .map((pid) => ({ pid, command: cmdline(pid) }))
  .filter(({ command }) => command.includes(marker))
  .filter(({ pid }) => !cmdline(parentPid(pid)).includes("scripts/dev.ts serve"));

if (leftovers.length > 0) {
  console.error("processes left behind by the tests:");
  for (const { pid, command } of leftovers) {
    console.error(`  ${pid} ${command.slice(0, 200)}`);
  }
  process.exit(1);
}
console.log("no etcd, kube-apiserver, kube-controller-manager or moto process left behind");
