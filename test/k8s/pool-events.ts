/** What the Kubernetes pool's tests listen with: a group's events as they come, and a launch for a placed member. */
import type { GroupListener, MemberOutcome, Placement, TaskLaunch } from "../../src/port/index.js";

export class Events implements GroupListener {
  readonly placements = new Map<string, Placement>();
  readonly readies = new Set<string>();
  readonly exits = new Map<string, MemberOutcome>();
  /** The last reason each member was said to be unplaced for. */
  readonly unplacedReasons = new Map<string, string>();
  private waiters: Array<() => void> = [];
  placed(key: string, placement: Placement): void {
    this.placements.set(key, placement);
    this.wake();
  }
  unplaced(key: string, reason: string): void {
    this.unplacedReasons.set(key, reason);
    this.wake();
  }
  ready(key: string): void {
    this.readies.add(key);
    this.wake();
  }
  exited(key: string, outcome: MemberOutcome): void {
    this.exits.set(key, outcome);
    this.wake();
  }
  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
  async until(what: () => boolean, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }
}

export function launchOf(key: string, placement: Map<string, Placement>, overrides: Partial<TaskLaunch> = {}): TaskLaunch {
  const [groupName, taskName, retry] = key.split("/") as [string, string, string];
  return {
    key,
    taskName,
    groupName,
    retryId: Number(retry),
    image: "alpine:3.20",
    argv: ["/bin/sh", "-c", "echo hi"],
    env: { PATH: "/bin:/usr/bin" },
    files: [{ path: "/etc/app/config.yaml", contents: Buffer.from("a: 1\n"), mode: 0o600 }],
    outputDir: "/osmo/data/output",
    inputDirs: [],
    address: placement.get(key)?.address ?? "",
    hosts: {},
    logPath: "/dev/null",
    ...overrides,
  };
}
