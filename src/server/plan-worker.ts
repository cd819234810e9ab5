/** A worker thread of the server's planner (plan-submission.ts), in util/worker-pool.ts's protocol. */
import { parentPort } from "node:worker_threads";
import { planSubmission, type PlanRequest } from "./plan-submission.js";

parentPort?.on("message", ({ id, job }: { id: number; job: PlanRequest }) => {
  parentPort?.postMessage({ id, started: Date.now() });
  void planSubmission(job).then((result) => parentPort?.postMessage({ id, result }));
});
