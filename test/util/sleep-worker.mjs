// A worker for the pool's test: each job is { ms, fail?, times? }, answered after busy-waiting that long
// (with `fail`, an error answer of that message; with `times`, the answer is when the job started and ended).
import { parentPort } from "node:worker_threads";

parentPort.on("message", ({ id, job }) => {
  const started = Date.now();
  parentPort.postMessage({ id, started });
  const end = started + job.ms;
  while (Date.now() < end);
  if (job.fail) parentPort.postMessage({ id, error: job.fail });
  else parentPort.postMessage({ id, result: job.times ? { started, ended: Date.now() } : job.ms });
});
