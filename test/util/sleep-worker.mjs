// A worker for the pool's test: each job is { ms, fail? }, answered after busy-waiting that long
// (with `fail`, an error answer of that message).
import { parentPort } from "node:worker_threads";

parentPort.on("message", ({ id, job }) => {
  parentPort.postMessage({ id, started: Date.now() });
  const end = Date.now() + job.ms;
  while (Date.now() < end);
  if (job.fail) parentPort.postMessage({ id, error: job.fail });
  else parentPort.postMessage({ id, result: job.ms });
});
