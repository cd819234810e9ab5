// A big finished workflow written straight into a TROUPE_HOME's SQLite store through the store's own API
// (RunStore from dist/store: createRun, recordTransition, updateTask/Group/Run), not run: running 100,000 tasks
// takes minutes, writing their record takes seconds, and the page reads the same rows either way. Used by
// bench/ui-scale.mjs and test/ui/scale.test.ts (after `npm run build`).
//
// The workflow: `groups` groups of tasks/groups tasks each; each group's lead takes the previous group's lead's
// output (a chain, so the graph has groups - 1 edges and as many layers as groups); every task went
// SUBMITTING -> WAITING -> SCHEDULING -> RUNNING -> COMPLETED, and so did every group, so the page's event stream
// has 4 events a task and 4 a group (the timeline draws a row per group past 2,000 attempts, from the latter).
import { RunStore } from "../dist/store/index.js";

/** The spec as written, one group a chain link: what the page's graph reads its edges from. */
export function bigSpec(name, tasks, groups) {
  const perGroup = tasks / groups;
  const lines = ["workflow:", `  name: ${name}`, "  groups:"];
  for (let g = 0; g < groups; g += 1) {
    lines.push(`  - name: g${g}`, "    tasks:");
    for (let t = 0; t < perGroup; t += 1) {
      lines.push(`    - name: g${g}-t${t}`, "      image: alpine:3.18", '      command: ["true"]');
      if (t === 0) lines.push("      lead: true");
      if (t === 0 && g > 0) lines.push("      inputs:", `      - task: g${g - 1}-t0`);
    }
  }
  return lines.join("\n") + "\n";
}

/** Writes the workflow into `home`'s store; returns its id. */
export function fillBigWorkflow(home, { name, tasks, groups }) {
  if (tasks % groups !== 0) throw new Error(`fillBigWorkflow: ${tasks} tasks do not split into ${groups} equal groups`);
  const perGroup = tasks / groups;
  const spec = bigSpec(name, tasks, groups);
  const store = RunStore.open(home, { maxQueuedOperations: 50_000 });
  try {
    const start = Date.now() - 60_000;
    const id = store.createRun({
      name,
      specText: spec,
      renderedSpec: spec,
      runtime: "host",
      submitTime: start,
      groups: Array.from({ length: groups }, (_, g) => ({
        name: `g${g}`,
        tasks: Array.from({ length: perGroup }, (_, t) => ({ name: `g${g}-t${t}`, lead: t === 0 })),
      })),
    });
    store.updateRun(id, { status: "RUNNING", startTime: start });
    const steps = ["SUBMITTING", "WAITING", "SCHEDULING", "RUNNING", "COMPLETED"];
    // Each group a slice of the minute, one after the other, its tasks a few milliseconds apart.
    const slice = 55_000 / groups;
    for (let g = 0; g < groups; g += 1) {
      const groupStart = start + g * slice;
      for (let t = 0; t < perGroup; t += 1) {
        const at = (step) => Math.round(groupStart + (step * slice) / 5 + t);
        for (let s = 1; s < steps.length; s += 1)
          store.recordTransition(id, {
            subject: { kind: "task", group: g, task: t, retryId: 0 },
            from: steps[s - 1],
            to: steps[s],
            reason: s === steps.length - 1 ? "exit code 0" : `${steps[s].toLowerCase()}`,
            time: at(s),
          });
        store.updateTask(id, g, t, { status: "COMPLETED", startTime: at(3), endTime: at(4), exitCode: 0, reason: "exit code 0" });
      }
      for (let s = 1; s < steps.length; s += 1)
        store.recordTransition(id, {
          subject: { kind: "group", group: g },
          from: steps[s - 1],
          to: steps[s],
          reason: steps[s].toLowerCase(),
          time: Math.round(groupStart + (s * slice) / 5),
        });
      store.updateGroup(id, g, { status: "COMPLETED", startTime: Math.round(groupStart), endTime: Math.round(groupStart + slice) });
    }
    store.updateRun(id, { status: "COMPLETED", endTime: start + 56_000 });
    store.flush();
    return id;
  } finally {
    store.close();
  }
}

// As a command, for callers that must not block their own thread for the seconds 100,000 tasks take:
//   node bench/ui-fill.mjs HOME NAME TASKS GROUPS   (prints the workflow's id)
if (process.argv[1] === new URL(import.meta.url).pathname) {
  const [home, name, tasks, groups] = process.argv.slice(2);
  if (!home || !name || !(Number(tasks) > 0) || !(Number(groups) > 0)) {
    console.error("usage: node bench/ui-fill.mjs HOME NAME TASKS GROUPS");
    process.exit(2);
  }
  console.log(fillBigWorkflow(home, { name, tasks: Number(tasks), groups: Number(groups) }));
}
