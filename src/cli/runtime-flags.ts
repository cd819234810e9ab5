/**
 * The flags that choose a runtime and set its options (`--runtime`, then each
 * runtime's own), shared by `troupe run` and `troupe plan`. Commander only:
 * the registry behind them (choose-runtime.ts) is loaded when a command runs.
 */
import { Command, Option } from "commander";

/** commander's names of the flags below: any of them given asks for a runtime. */
const RUNTIME_FLAG_KEYS = [
  "runtime",
  "isolation",
  "engine",
  "pull",
  "shmSize",
  "partition",
  "account",
  "qos",
  "sharedDir",
  "listenAddress",
  "spread",
  "nodeEngine",
  "batchJobs",
  "namespace",
  "context",
  "kubeconfig",
  "podAnnotations",
  "gangScheduler",
  "gangQueue",
  "schedulerName",
  "dataVolume",
  "dataVolumePath",
  "nodeSelector",
  "priorityClass",
  "podTemplate",
  "tolerations",
  "platforms",
  "defaultPlatform",
  "barrierHolder",
];

export function runtimeFlagsGiven(options: object): boolean {
  return RUNTIME_FLAG_KEYS.some((key) => (options as Record<string, unknown>)[key] !== undefined);
}

export function addRuntimeFlags(command: Command): Command {
  return command
    .addOption(
      new Option(
        "--runtime <runtime>",
        "where tasks run (default: container when podman or docker answers and can start containers, else host, saying why; or TROUPE_RUNTIME); slurm: across a Slurm cluster's nodes, from its login node; kubernetes: one pod per task on the cluster of your kubeconfig",
      ).choices(["host", "container", "slurm", "kubernetes"]),
    )
    .addOption(
      new Option("--isolation <mode>", "host runtime: netns, own network per task (root); none, host network").choices(["netns", "none"]),
    )
    .addOption(
      new Option("--engine <engine>", "container runtime: which engine (default: the first that answers)").choices(["podman", "docker"]),
    )
    .addOption(
      new Option("--pull <policy>", "container runtime: when to pull images (default missing)").choices(["missing", "always", "never"]),
    )
    .option("--shm-size <size>", "container runtime: each container's /dev/shm, e.g. 8Gi (default 1Gi; engines give 64 MB)")
    .option("--partition <name>", "slurm runtime: the partition groups' jobs run in (default: the cluster's default)")
    .option("--account <name>", "slurm runtime: the account jobs are charged to")
    .option("--qos <name>", "slurm runtime: the jobs' quality of service")
    .option(
      "--shared-dir <dir>",
      "slurm runtime: a directory of the cluster's shared file system for troupe's files (default TROUPE_SLURM_SHARED, else $TROUPE_HOME/slurm)",
    )
    .option(
      "--listen-address <ip>",
      "slurm runtime: this machine's address the nodes reach (default: its address on the route to the first node)",
    )
    .addOption(
      new Option(
        "--spread <how>",
        "slurm runtime: nodes, each member of a group on a node of its own (default); pack, as Slurm places them",
      ).choices(["nodes", "pack"]),
    )
    .addOption(
      new Option(
        "--node-engine <engine>",
        "slurm runtime: podman, where the nodes have it: each task in a container of its image on its node (default: troupe's host sandbox there)",
      ).choices(["podman"]),
    )
    .option(
      "--batch-jobs",
      "slurm runtime: each group a batch job (sbatch), as a server's are, where a site refuses interactive allocations (default: salloc's, which Slurm places at once)",
    )
    .option("--namespace <name>", "kubernetes runtime: the namespace the pods are made in (default: the context's, else default)")
    .option("--context <name>", "kubernetes runtime: the kubeconfig's context (default: its current context)")
    .option("--kubeconfig <file>", "kubernetes runtime: the kubeconfig (default: KUBECONFIG, else ~/.kube/config)")
    .option(
      "--pod-annotations <KEY=VALUE>",
      "kubernetes runtime: an annotation every pod gets, as a pod template's (may be given again)",
      (word: string, words: string[] | undefined) => [...(words ?? []), word],
    )
    .addOption(
      new Option(
        "--gang-scheduler <scheduler>",
        "kubernetes runtime: a PodGroup per group of several members for this gang scheduler, so that it places all of a group's pods or none (default none)",
      ).choices(["coscheduling", "volcano", "kai", "none"]),
    )
    .option("--gang-queue <name>", "kubernetes runtime: the queue of volcano's and KAI's PodGroups (default: default)")
    .option(
      "--scheduler-name <name>",
      "kubernetes runtime: the scheduler that places the pods (default: the gang scheduler's, else the cluster's)",
    )
    .option(
      "--data-volume <claim>",
      "kubernetes runtime: a ReadWriteMany PersistentVolumeClaim through which pods see their {{output}} and {{input}} (troupe's home on it; with --data-volume-path)",
    )
    .option(
      "--data-volume-path <dir>",
      "kubernetes runtime: where this machine sees --data-volume's root (an NFS or other mount of the same storage)",
    )
    .option(
      "--node-selector <KEY=VALUE>",
      "kubernetes runtime: a node label every pod's node must have (may be given again)",
      (word: string, words: string[] | undefined) => [...(words ?? []), word],
    )
    .option(
      "--tolerations <KEY[=VALUE][:EFFECT]>",
      "kubernetes runtime: a toleration every pod gets, as kubectl writes taints (no VALUE: any; may be given again)",
      (word: string, words: string[] | undefined) => [...(words ?? []), word],
    )
    .option("--priority-class <name>", "kubernetes runtime: every pod's PriorityClass")
    .option(
      "--platforms <file>",
      "kubernetes runtime: a YAML file of the pool's platforms (NAME: {node_selector, tolerations, priority_class, pod_template}), which a task's resource names with platform:",
    )
    .option("--default-platform <name>", "kubernetes runtime: the platform of a task whose resource names none")
    .option(
      "--pod-template <file>",
      "kubernetes runtime: a YAML file holding a partial pod (labels, annotations, spec fields, one container) every pod is made over, as OSMO's pod templates",
    )
    .addOption(
      new Option(
        "--barrier-holder <holder>",
        "kubernetes runtime: what holds each pod's command until its group is released: init, troupe-init brought in a ConfigMap (any image, even one without a shell; default); shell, the image's /bin/sh (no ConfigMap)",
      ).choices(["init", "shell"]),
    );
}
