/**
 * A troupe that dies mid-run, for the conformance suite's dead-session cases
 * (port.dead-sessions.ts): run by vite-node in a child process, it makes the
 * pool named in its order, opens a session, starts one group, waits until
 * every member has printed "begun", prints one JSON line (the group's id and
 * each member's launch) and waits to be killed. Its order comes in the
 * environment variable TROUPE_CONFORMANCE_ORDER (JSON, see DeadSessionOrder).
 */
import type { RunContext, TaskLaunch } from "../../src/port/index.js";
import { BACKENDS, type BackendName } from "./backends.js";
import { GroupProbe } from "./group-probe.js";
import { outputOf } from "./target.js";

export interface DeadSessionOrder {
  backend: BackendName;
  image: string;
  run: RunContext;
  group: string;
  /** Each member's argv; each must print "begun" once it runs. */
  commands: Record<string, string[]>;
}

export interface DeadSessionReport {
  id: string;
  launches: TaskLaunch[];
}

const order = JSON.parse(process.env.TROUPE_CONFORMANCE_ORDER ?? "") as DeadSessionOrder;
const pool = await BACKENDS[order.backend]();
const session = await pool.openSession(order.run);
const probe = new GroupProbe(session, order.run, order.group, Object.keys(order.commands), { image: order.image });
const keys = await probe.started(Object.fromEntries(Object.entries(order.commands).map(([task, argv]) => [task, () => argv])));
for (const key of keys) await outputOf(probe.handle, key, "begun");
const report: DeadSessionReport = {
  id: probe.handle.id,
  launches: Object.entries(order.commands).map(([task, argv]) => probe.launch(task, () => argv)),
};
process.stdout.write(`${JSON.stringify(report)}\n`);
// Killed by the test (SIGKILL): nothing of this process closes anything.
setInterval(() => undefined, 60_000);
