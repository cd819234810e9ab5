import { Command } from "commander";
import type { RunOptions } from "./run-action.js";
import { addRuntimeFlags } from "./runtime-flags.js";
import { action, addSpecOptions, parseDurationFlag, parseNonNegativeInt, setEnvOption } from "./shared.js";

export function runCommand(): Command {
  const command = addRuntimeFlags(
    new Command("run")
      .description("run a workflow on this machine and wait for it to end")
      .argument("<file>", "workflow file (`-` for standard input)"),
  )
    .option("--cpus <n>", "CPU capacity of the local pool (default: this machine's cores)", parseNonNegativeInt("--cpus"))
    .option("--memory <size>", "memory capacity of the local pool, e.g. 16Gi (default: this machine's memory)")
    .option("--gpus <n>", "GPU capacity of the local pool (default: GPUs that nvidia-smi lists)", parseNonNegativeInt("--gpus"))
    .option("--gpus-unchecked", "take --gpus as given, even above the GPUs nvidia-smi lists (GPUs it does not see)")
    .option(
      "--task-user <user>",
      "host runtime as root, and Slurm whose jobs run as root: who tasks run as in their sandbox, UID[:GID] or a user name (default nobody, 65534:65534)",
    )
    .option("--allow-privileged", "let tasks with `privileged: true` run as root with root's capabilities (default: refused)")
    .option("--allow-host-network", "let tasks with `hostNetwork: true` run on the machine's own network (default: refused)")
    .option(
      "--allow-mount <path>",
      "let tasks' `volumeMounts` show them this host path and what is under it (repeat for more; default: none)",
      (path: string, previous: string[] = []) => [...previous, path],
    )
    .option(
      "--data-store <url>",
      "intermediate storage, s3://BUCKET/PREFIX: every task's output is uploaded to PREFIX/RUN/TASK/RETRY/ when it ends and downloaded into its consumers' inputs (with the DATA credential of the bucket; default: tasks read each other's directories)",
    )
    .option(
      "--start-timeout <duration>",
      "how long a task's sandbox, container or pod may take to come up before the task fails FAILED_START_TIMEOUT (3005), e.g. 90s, 10m (default 30m, as OSMO's max_pod_restart_limit; 0: no limit)",
      parseDurationFlag("--start-timeout"),
    )
    .option("--log-file <path>", "write troupe's own log of the run there, JSON lines (default: none; or TROUPE_LOG_FILE)")
    .option(
      "--max-parallel <n>",
      "at most this many tasks at once (default 64; on kubernetes 1000, as its cluster queues the pods it cannot place yet; a larger group runs alone)",
      parseNonNegativeInt("--max-parallel"),
    );
  addSpecOptions(setEnvOption(command)).addHelpText(
    "after",
    `
Exit codes: 0 completed, 1 failed, 2 invalid spec or usage, 130 canceled.

With --runtime slurm each group is one Slurm batch job; the pool's capacity is the partition's
nodes (sinfo). troupe's home must be on the cluster's shared file system (outputs and logs are there).
Each member runs in troupe's host sandbox on its node (bubblewrap), or, with --node-engine podman,
in a podman container of its image there.

With --runtime kubernetes each task is one pod (restartPolicy Never) in --namespace of the cluster
your kubeconfig (KUBECONFIG, --kubeconfig, --context) names; the cluster's scheduler places the pods,
the nodes' allocatable resources are the pool's capacity, and logs come through the API server.

Whether the container engine can start containers is checked once (a tiny container, the answer
kept in $TROUPE_HOME/engine-checks until the engine or its configuration changes); where it cannot,
the run is on the host runtime and its first lines say why, or, with --runtime container, troupe
stops at once (exit 2, E_ENGINE_CANNOT_START). Every image of the workflow is checked, and pulled
as --pull says, as the run starts: a group whose image cannot be had fails at once.

Examples:
  $ troupe run examples/group_tasks_communication.yaml
  $ troupe run examples/templated_fanout.yaml --set workers=8 --output json
  $ troupe run examples/exit_actions.yaml --max-retries 2 --isolation none
  $ troupe run examples/parallel_tasks.yaml --set-env LOG_LEVEL=debug
  $ troupe run examples/parallel_tasks.yaml --log-file run.log   # troupe's debug log (TROUPE_LOG_LEVEL)
  $ troupe run examples/group_tasks_communication.yaml --allow-host-network   # hostNetwork: true tasks may run
  $ troupe run examples/data_passing.yaml --data-store s3://lab-data/troupe   # outputs passed through the store

  $ CONTAINERS_CONF=scripts/ci-containers.conf troupe run examples/parallel_tasks.yaml --runtime container
  $ troupe run examples/group_tasks_communication.yaml --runtime slurm --partition main   # on a login node
  $ troupe run examples/group_tasks_communication.yaml --runtime slurm --node-engine podman   # nodes with podman
  $ troupe run examples/group_tasks_communication.yaml --runtime kubernetes --namespace team-a --context prod
  $ troupe run examples/group_tasks_communication.yaml --runtime kubernetes --barrier-holder shell   # no ConfigMap for troupe-init`,
  );
  return command.action(
    action(async (file: string, options: RunOptions) => {
      const runAction = import("./run-action.js");
      // The runtimes are asked first (a container engine whether it can start containers): their answers come
      // while the rest of troupe loads and reads the file.
      if (Object.keys(options.setEnv ?? {}).length > 0) (await runAction).checkSetEnv(options.setEnv);
      const choice = (await import("./choose-runtime.js")).askRuntime(options);
      return (await runAction).runWorkflow(file, options, choice);
    }),
  );
}
