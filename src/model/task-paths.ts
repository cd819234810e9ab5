/**
 * OSMO's paths inside a task (SPEC-REFERENCE, "Data, credentials and paths
 * inside a task"): scripts hard-code them, so a runtime that can show a task
 * directories at paths of its choosing (a mount namespace of its own: a
 * container, a pod) shows the task's output and inputs there, and its
 * `{{output}}` and `{{input:N}}` are these paths.
 */
export const OSMO_OUTPUT_PATH = "/osmo/data/output";
const OSMO_INPUT_ROOT = "/osmo/data/input";

/** Where input N (its position among the task's inputs), or the input from task NAME, is shown. */
export function osmoInputPath(ref: number | string): string {
  return `${OSMO_INPUT_ROOT}/${ref}`;
}
