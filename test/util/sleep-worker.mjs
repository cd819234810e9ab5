// A worker for the pool's test: each job is { ms }, answered after busy-waiting that long.
import { parentPort } from "node:worker_threads";

parentPort.on("message", ({ id, job }) => {
  parentPort.postMessage({ id, started: Date.now() });
  const end = Date.now() + job.ms;
  while (Date.now() < end);
  parentPort.postMessage({ id, result: job.ms });
});
