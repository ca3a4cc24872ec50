// CPU time and memory of a process from /proc (Linux), sampled by the driver from outside.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const value = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    ticksPerSecond = Number.isFinite(value) && value > 0 ? value : 100;
  }
  return ticksPerSecond;
}

/** User plus system CPU seconds the process has used so far (utime + stime). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clockTicks();
}

/**
 * CPU seconds the machine's own work has taken so far, all cores (/proc/stat: user, nice, system,
 * irq and softirq; not idle, iowait, or time a hypervisor gave to others).
 */
export function machineBusySeconds(): number {
  const first = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = first
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq) / clockTicks();
}

export interface MemoryReading {
  /** Resident set size now (VmRSS), MiB. */
  rssMb: number;
  /** Peak resident set size so far (VmHWM), MiB. */
  hwmMb: number;
}

export function memoryOf(pid: number): MemoryReading {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (match === null) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]);
  };
  return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024 };
}

/** Samples a process's RSS at a fixed interval until stopped. */
export class MemorySampler {
  readonly #pid: number;
  readonly #samples: { at: number; rssMb: number }[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(pid: number, intervalMs = 500) {
    this.#pid = pid;
    this.#sample();
    this.#timer = setInterval(() => {
      this.#sample();
    }, intervalMs);
  }

  #sample(): void {
    try {
      this.#samples.push({ at: Date.now(), rssMb: memoryOf(this.#pid).rssMb });
    } catch {
      // The process has exited; stop() reports what was seen.
    }
  }

  /** Median RSS of the samples taken at or after `since` (ms since epoch). */
  medianSince(since: number): number {
    const values = this.#samples
      .filter((s) => s.at >= since)
      .map((s) => s.rssMb)
      .sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)] ?? Number.NaN;
  }

  maxSince(since: number): number {
    return Math.max(...this.#samples.filter((s) => s.at >= since).map((s) => s.rssMb));
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
