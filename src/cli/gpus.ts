/**
 * The GPUs of this machine, and pools that would give out more than that:
 * a task given a GPU that is not there gets an index (CUDA_VISIBLE_DEVICES=0,
 * a CDI device) that names nothing, and fails far from the cause. So a pool's
 * GPU count above what the machine has is refused at start, unless the user
 * says they know better (GPUs that nvidia-smi does not list, such as AMD ones
 * given through CDI: `--gpus-unchecked`, or `gpus_unchecked: true` in a
 * server's pool).
 */
import { execFileSync } from "node:child_process";
import { UsageError } from "../errors/index.js";
import { onPath } from "../util/executables.js";
import { log } from "../util/log.js";

/** GPUs that `nvidia-smi -L` lists; none when it is missing or fails. */
export function machineGpus(): number {
  if (!onPath("nvidia-smi")) return 0; // not even a fork of troupe for nothing
  try {
    const out = execFileSync("nvidia-smi", ["-L"], { encoding: "utf8", timeout: 5_000, stdio: ["ignore", "pipe", "ignore"] });
    return out.split("\n").filter((l) => l.startsWith("GPU ")).length;
  } catch (error) {
    // nvidia-smi without a driver to ask (or a GPU) fails: no GPUs to offer.
    log.debug({ err: error }, "nvidia-smi -L failed: no GPUs");
    return 0;
  }
}

/**
 * A pool's GPU capacity: `asked` when the machine has that many (or the user
 * said not to check), the machine's own when nothing was asked.
 * `what` names the setting and `override` how to skip the check, for the error.
 */
export function poolGpus(asked: number | undefined, unchecked: boolean, what: string, override: string): number {
  if (asked !== undefined && (unchecked || asked === 0)) return asked;
  const present = machineGpus();
  if (asked === undefined) return present;
  if (asked <= present) return asked;
  const listed = onPath("nvidia-smi") ? `nvidia-smi -L lists ${present}` : "nvidia-smi is not installed";
  throw new UsageError(
    `${what} ${asked}: this machine has ${present} GPU${present === 1 ? "" : "s"} (${listed}), and a pool cannot give out GPUs it does not have. ` +
      `If they are there (GPUs nvidia-smi does not list, such as AMD ones through CDI), say so with ${override}.`,
  );
}
