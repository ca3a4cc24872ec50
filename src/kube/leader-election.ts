// Leader election on a coordination.k8s.io/v1 Lease, following client-go's algorithm: acquire
// when the lease is free or has not been renewed for the record's leaseDurationSeconds (by our own
// observation), renew every retryPeriod, and give up leadership when no renewal succeeded within
// renewDeadline, which is shorter than leaseDuration, so a leader stops before its lease can
// be taken. Every change of holder counts in leaseTransitions. Updates carry resourceVersion
// (optimistic concurrency).
import { systemClock, type Clock } from "../clock.ts";
import { classifyKubeError } from "./errors.ts";
import { namespacedPath, type KubeClient } from "./rest.ts";

/** A coordination.k8s.io/v1 Lease as JSON carries it (MicroTime fields are strings). */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** The Lease requests the elector makes. */
export interface LeaseApi {
  read(namespace: string, name: string): Promise<Lease>;
  create(namespace: string, body: Lease): Promise<Lease>;
  replace(namespace: string, name: string, body: Lease): Promise<Lease>;
}

export function leaseApi(kube: KubeClient): LeaseApi {
  const path = (namespace: string, name?: string): string =>
    namespacedPath("/apis/coordination.k8s.io/v1", namespace, "leases", name);
  return {
    read: (namespace, name) => kube.get<Lease>(path(namespace, name)),
    create: (namespace, body) => kube.create<Lease>(path(namespace), body),
    replace: (namespace, name, body) => kube.replace<Lease>(path(namespace, name), body),
  };
}

/** A MicroTime as the API server parses it: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}

export interface LeaderElectionOptions {
  api: LeaseApi;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: Clock;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onNewLeader?: (identity: string) => void;
  onError?: (message: string) => void;
}

export const leaderElectionDefaults = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

interface Observed {
  holder: string;
  renewTime: string;
  resourceVersion: string;
  /** The record's leaseDurationSeconds, in ms: how long its holder may go without renewing. */
  leaseDurationMs: number;
  /** Our clock when we last saw the record change. */
  observedAt: number;
}

export class LeaderElector {
  private readonly options: Required<Omit<LeaderElectionOptions, "onNewLeader" | "onError">> &
    Pick<LeaderElectionOptions, "onNewLeader" | "onError">;
  private observed: Observed | undefined;
  private leading = false;
  private lastRenewAt = 0;
  private stopped = false;
  private timer: ReturnType<Clock["setTimer"]> | undefined;
  private inFlight: Promise<void> | undefined;
  private lastLeader = "";

  constructor(options: LeaderElectionOptions) {
    if (
      (options.renewDeadlineMs ?? leaderElectionDefaults.renewDeadlineMs) >=
      (options.leaseDurationMs ?? leaderElectionDefaults.leaseDurationMs)
    ) {
      throw new RangeError("renewDeadline must be shorter than leaseDuration");
    }
    this.options = { ...leaderElectionDefaults, clock: systemClock, ...options };
  }

  isLeader(): boolean {
    return (
      this.leading &&
      !this.stopped &&
      this.options.clock.now() - this.lastRenewAt < this.options.renewDeadlineMs
    );
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = this.options.clock.setTimer(() => {
      this.inFlight = this.tick().finally(() => {
        this.inFlight = undefined;
      });
    }, delayMs);
  }

  private jittered(ms: number): number {
    return ms * (1 + Math.random() * 0.2);
  }

  private async tick(): Promise<void> {
    const { clock, retryPeriodMs, renewDeadlineMs } = this.options;
    // A request on a silent connection can hang for minutes: a leader still steps down at its
    // deadline (as client-go bounds each renewal), and a candidate keeps trying.
    const limitMs = this.leading
      ? Math.max(0, this.lastRenewAt + renewDeadlineMs - clock.now())
      : renewDeadlineMs;
    const renewed = await this.within(this.tryAcquireOrRenew(), limitMs);
    if (this.stopped) return;
    const now = clock.now();
    if (renewed) {
      this.lastRenewAt = now;
      if (!this.leading) {
        this.leading = true;
        this.options.onStartedLeading();
      }
    } else if (this.leading && now - this.lastRenewAt >= renewDeadlineMs) {
      this.loseLeadership();
      return;
    }
    this.schedule(this.leading ? retryPeriodMs : this.jittered(retryPeriodMs));
  }

  /** The attempt's outcome, or false when it has not settled within `ms` (it is then ignored). */
  private within(attempt: Promise<boolean>, ms: number): Promise<boolean> {
    const { clock, onError } = this.options;
    return new Promise((resolve) => {
      const timer = clock.setTimer(() => {
        onError?.(`no answer from the API server within ${Math.round(ms / 100) / 10} s`);
        resolve(false);
      }, ms);
      void attempt.then((result) => {
        clock.clearTimer(timer);
        resolve(result);
      });
    });
  }

  private loseLeadership(): void {
    this.leading = false;
    this.stopped = true;
    this.options.onStoppedLeading();
  }

  private leaseBody(existing: Lease | undefined, now: number, acquiring: boolean): Lease {
    const { name, namespace, identity, leaseDurationMs } = this.options;
    const spec = existing?.spec ?? {};
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name, namespace, resourceVersion: existing?.metadata?.resourceVersion },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: Math.round(leaseDurationMs / 1000),
        acquireTime: acquiring ? microTime(now) : spec.acquireTime,
        renewTime: microTime(now),
        // As client-go: taking the lease from anyone else, a released (empty) holder included, is a transition.
        leaseTransitions: existing === undefined ? 0 : (spec.leaseTransitions ?? 0) + (acquiring ? 1 : 0),
      },
    };
  }

  private observe(lease: Lease): void {
    const holder = lease.spec?.holderIdentity ?? "";
    const renewTime = lease.spec?.renewTime ?? "";
    const resourceVersion = lease.metadata?.resourceVersion ?? "";
    // client-go trusts the record: a holder configured with a longer lease keeps it that long.
    const leaseDurationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    if (this.observed?.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = {
        holder,
        renewTime,
        resourceVersion,
        leaseDurationMs,
        observedAt: this.options.clock.now(),
      };
    } else {
      this.observed.resourceVersion = resourceVersion;
      this.observed.leaseDurationMs = leaseDurationMs;
    }
    if (holder !== this.lastLeader) {
      this.lastLeader = holder;
      if (holder !== "") this.options.onNewLeader?.(holder);
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, name, namespace, identity, clock } = this.options;
    const now = clock.now();
    try {
      let lease: Lease;
      try {
        lease = await api.read(namespace, name);
      } catch (err) {
        if (classifyKubeError(err).kind !== "NotFound") throw err;
        const created = await api.create(namespace, this.leaseBody(undefined, now, true));
        this.observe(created);
        return true;
      }
      this.observe(lease);
      const holder = lease.spec?.holderIdentity ?? "";
      const observed = this.observed;
      const expired = observed === undefined || observed.observedAt + observed.leaseDurationMs <= now;
      if (holder !== "" && holder !== identity && !expired) {
        return false;
      }
      const updated = await api.replace(namespace, name, this.leaseBody(lease, now, holder !== identity));
      this.observe(updated);
      return true;
    } catch (err) {
      this.options.onError?.(classifyKubeError(err).message);
      return false;
    }
  }

  /** Stops electing; a leader hands the lease back so a successor can take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.options.clock.clearTimer(this.timer);
    await this.inFlight;
    if (!this.leading) return;
    this.leading = false;
    const { api, name, namespace, identity } = this.options;
    try {
      const lease = await api.read(namespace, name);
      if (lease.spec?.holderIdentity !== identity) return;
      const now = this.options.clock.now();
      await api.replace(namespace, name, {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
        spec: {
          holderIdentity: "",
          leaseDurationSeconds: 1,
          leaseTransitions: lease.spec.leaseTransitions,
          renewTime: microTime(now),
          acquireTime: microTime(now),
        },
      });
    } catch (err) {
      this.options.onError?.(`releasing the lease: ${classifyKubeError(err).message}`);
    }
  }
}
