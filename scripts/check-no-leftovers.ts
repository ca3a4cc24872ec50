// Fails when a process started by the test harness (the control plane, moto, the registry, the
// node's containerd, kubelet and container shims) or the node's network bridge outlived the test
// run. What a running local environment (scripts/dev.ts serve) owns is not counted.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { nodeBridge } from "../test/harness/node.ts";
import { repoRoot } from "../test/harness/paths.ts";

/** Binaries under .cache/, and anything pointed at a node's or registry's scratch folder. */
const markers = [join(repoRoot, ".cache") + "/", "/ecr-node-", "/ecr-registry-"];

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

const devEnvironmentRunning = readdirSync("/proc").some(
  (pid) => /^\d+$/.test(pid) && cmdline(pid).includes("scripts/dev.ts serve"),
);

const leftovers = readdirSync("/proc")
  .filter((entry) => /^\d+$/.test(entry) && entry !== String(process.pid))
  .map((pid) => ({ pid, command: cmdline(pid) }))
  .filter(({ command }) => markers.some((marker) => command.includes(marker)))
  .filter(({ pid }) => !ownedByDevEnvironment(pid))
  // A node's container shims leave their parent by design; with a local environment up, they are its.
  .filter(({ command }) => !(devEnvironmentRunning && command.includes("/ecr-node-")));

/** A process whose ancestors include the local environment's `serve` process. */
function ownedByDevEnvironment(pid: string): boolean {
  for (let current = parentPid(pid); current !== "" && current !== "0" && current !== "1";) {
    if (cmdline(current).includes("scripts/dev.ts serve")) return true;
    current = parentPid(current);
  }
  return false;
}

const bridgeLeft = existsSync(`/sys/class/net/${nodeBridge}`) && !devEnvironmentRunning;

if (leftovers.length > 0 || bridgeLeft) {
  console.error("left behind by the tests:");
  for (const { pid, command } of leftovers) {
    console.error(`  ${pid} ${command.slice(0, 200)}`);
  }
  if (bridgeLeft) console.error(`  the node's network bridge ${nodeBridge}`);
  process.exit(1);
}
console.log("no control plane, moto, registry or node process, and no node bridge, left behind");
