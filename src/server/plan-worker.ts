/** A worker thread of the server's planner (plan-submission.ts), in util/worker-pool.ts's protocol. */
import { parentPort } from "node:worker_threads";
import { planSubmission, type PlanRequest } from "./plan-submission.js";

parentPort?.on("message", ({ id, job }: { id: number; job: PlanRequest }) => {
  parentPort?.postMessage({ id, started: Date.now() });
  // An internal error fails this job alone (an `error` answer), not the worker and whatever it would take next.
  planSubmission(job)
    .then((result) => parentPort?.postMessage({ id, result }))
    .catch((error: unknown) => parentPort?.postMessage({ id, error: error instanceof Error ? error.message : String(error) }));
});
