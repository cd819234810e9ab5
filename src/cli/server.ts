/** `troupe server` and `troupe server token create`. */
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { UsageError } from "../errors/index.js";
import { configureLog, log, LOG_LEVELS, type LogLevel } from "../util/log.js";
import { logLevelFromEnv, parseLogSize, serverLogFile } from "./log-setup.js";
import { action, parseNonNegativeInt } from "./shared.js";

interface ServerOptions {
  host: string;
  port: number;
  home?: string;
  runtime?: "host" | "container" | "slurm";
  isolation?: "netns" | "none";
  maxTasks: number;
  maxRunsPerUser: number;
  config?: string;
  taskUser?: string;
  allowPrivileged?: boolean;
  allowHostNetwork?: boolean;
  privateWorkflows: boolean;
  logLevel?: LogLevel;
  logMaxSize: number;
}

function useHome(home: string | undefined): void {
  if (home) process.env.TROUPE_HOME = resolve(home);
}

export function serverCommand(): Command {
  const command = new Command("server")
    .description("serve the troupe API: submissions from many users run on this machine's pool")
    .option("--host <address>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0: any free port)", parseNonNegativeInt("--port"), 8080)
    .option("--home <dir>", "where runs, logs and tokens are kept (default $TROUPE_HOME, else ~/.troupe)")
    .addOption(
      new Option(
        "--runtime <runtime>",
        "the default pool's runtime (default: container when an engine answers and can start containers; with container, the server does not start unless it can)",
      ).choices(["host", "container", "slurm"]),
    )
    .addOption(new Option("--isolation <mode>", "host runtime isolation").choices(["netns", "none"]))
    .option("--task-user <user>", "the default pool's host tasks run as this user, UID[:GID] or a name (default nobody, 65534:65534)")
    .option("--allow-privileged", "the default pool runs tasks with `privileged: true` (as root); refused otherwise")
    .option("--allow-host-network", "the default pool runs tasks with `hostNetwork: true` on the machine's network; refused otherwise")
    .option("--config <file>", "the pools to offer (YAML, below; examples/server-config.yaml); default: one pool, `default`, this machine")
    .option("--max-tasks <n>", "largest workflow accepted, in tasks", parseNonNegativeInt("--max-tasks"), 100_000)
    .option("--max-runs-per-user <n>", "workflows one user may have running at once", parseNonNegativeInt("--max-runs-per-user"), 20)
    .option(
      "--private-workflows",
      "each workflow is read (list, query, spec, events, logs) only by its submitter and admins (default: by every user, as in OSMO)",
      false,
    )
    .addOption(
      new Option("--log-level <level>", "what the server's log (HOME/server.log) keeps (default info, or TROUPE_LOG_LEVEL)").choices(
        LOG_LEVELS,
      ),
    )
    .option(
      "--log-max-size <size>",
      "the log's size before it is rotated to HOME/server.log.1 (the one before dropped), e.g. 64Mi",
      parseLogSize("--log-max-size"),
      64 * 1024 * 1024,
    )
    .addHelpText(
      "after",
      `
The first line on stdout is "troupe server: listening on URL". Every API call but
/api/health needs a token: \`troupe server token create NAME\` makes one. The web UI
is at URL/ (sign in with a token); \`troupe ui\` shows a home's local history instead.

Running tasks outlive the server: SIGTERM (Ctrl-C, SIGHUP) makes it exit at once,
and its next start (after a crash too) resumes the workflows it was running.

The server's log is HOME/server.log: JSON lines (pino) from the server and its HTTP
thread, one per request (no tokens), and whatever it tolerated (a sweep that could not
remove something, a client gone mid-stream) with the run and task it concerns.

The config file (--config, YAML or JSON) lists the pools; users pick one with
\`troupe workflow submit --pool NAME\`. Every field but name is optional:
  pools:
  - name: default             # lowercase letters, digits, - and _; at most 63
    runtime: host             # host, container or slurm (default: container when an engine answers)
    isolation: netns          # host runtime: netns or none
    engine: podman            # container runtime: podman or docker
    pull: missing             # container runtime: when to pull images, missing, always or never
    shm_size: 8Gi             # container runtime: each container's /dev/shm (default 1Gi)
    cpus: 8                   # capacity the pool's workflows share (default: this machine's)
    memory: 16Gi
    gpus: 0                   # at most what nvidia-smi lists (default: those); gpus_unchecked: true
                              #   takes it as given
    max_retries: 2            # how often RESCHEDULE may retry a task (default 0)
    max_parallel: 64          # tasks running at once (default 64; kubernetes 1000)
    start_timeout: 30m        # a task whose sandbox is not up by then fails FAILED_START_TIMEOUT (default 30m; 0: none)
    exit_actions: {RESCHEDULE: "137"}   # after each task's own exitActions
    task_user: "1000:1000"    # host runtime, as root: who tasks run as (default nobody, 65534:65534)
    privileged_allowed: false # whether tasks with privileged: true may run, as root
    host_network_allowed: false # whether tasks with hostNetwork: true may run on the machine's network
    allowed_mounts: [/data]   # host paths tasks' volumeMounts may show them (default: none)
    default_mounts: ["/datasets:/datasets"]   # mounts every task gets, SRC or SRC:DEST (default: none)
    data_store: s3://lab-data/troupe   # intermediate storage: each task's output goes up to PREFIX/RUN/TASK/RETRY/
                              #   and down into its consumers' inputs (the user's DATA credential of the bucket)
  - name: cluster             # a Slurm cluster, from its login node: each group one batch job
    runtime: slurm
    partition: main           # slurm: the partition (default: the cluster's default); its nodes are the capacity
    account: research         # slurm: the account jobs are charged to
    qos: normal               # slurm: the jobs' quality of service
    shared_dir: /shared/troupe  # slurm: troupe's files on the shared file system (default HOME/slurm)
    listen_address: 10.0.0.1  # slurm: this machine's address the nodes reach (default: found by route)
    spread: nodes             # slurm: nodes, each member on a node of its own (default), or pack
    task_user: "1000:1000"    # slurm, jobs as root: who tasks run as in their node's sandbox (default nobody)
    node_engine: podman       # slurm: each task in a podman container of its image on its node (default: host sandbox)
    batch_jobs: true          # slurm: groups as batch jobs (a server's always are: its tasks outlive it)
  - name: k8s                 # a Kubernetes cluster: a pod per task attempt
    runtime: kubernetes
    namespace: team-a         # kubernetes: the namespace (default: the context's, else default)
    context: prod             # kubernetes: the kubeconfig's context (default: its current one)
    kubeconfig: /etc/troupe/kubeconfig   # kubernetes: default KUBECONFIG, else ~/.kube/config
    pod_annotations: {team: a}   # kubernetes: annotations every pod gets
    gang_scheduler: coscheduling # kubernetes: a PodGroup per group (coscheduling, volcano, kai; default none)
    gang_queue: research      # kubernetes: volcano's and KAI's queue (default: default)
    scheduler_name: scheduler-plugins-scheduler  # kubernetes: the pods' scheduler (default: the gang's, else the cluster's)
    data_volume: shared-data  # kubernetes: a ReadWriteMany claim through which pods see their data (with data_volume_path)
    data_volume_path: /mnt/shared  # kubernetes: where this machine sees the claim (the server's home on it)
    node_selector: {pool: research}  # kubernetes: every pod's (also tolerations:, priority_class:, pod_template:)
    platforms:                # kubernetes: what a task's resource may name as its platform
      a100: {node_selector: {gpu: a100}, tolerations: [{key: gpu, operator: Exists}]}
    default_platform: a100    # kubernetes: the platform of a task whose resource names none
    barrier_holder: init      # kubernetes: troupe-init from a ConfigMap holds pods (any image; default), or shell: the image's /bin/sh
A field the server does not know, or a wrong value, is refused at start, naming it.
A pool's runtime is chosen once, at the start, for all its runs.

Examples:
  $ troupe server token create alice --home /srv/troupe
  $ troupe server --home /srv/troupe --port 8080
  $ troupe server --home /srv/troupe --config examples/server-config.yaml
  $ troupe server --home /srv/troupe --allow-host-network   # the default pool runs hostNetwork: true tasks
  $ troupe server --home /srv/troupe --log-level debug   # then: tail -f /srv/troupe/server.log`,
    )
    .action(action((options: ServerOptions) => serve(options)));
  command
    .command("token")
    .description("API tokens")
    .addHelpText("after", "\nExample:\n  $ troupe server token create alice --home /srv/troupe")
    .command("create")
    .description("make a token for a user and print it (alone, on stdout); it is stored hashed and cannot be shown again")
    .argument("<name>", "the user's name")
    .option("--admin", "may cancel anyone's workflows (and read them on a server with --private-workflows)", false)
    .addHelpText(
      "after",
      "\n--home DIR (of `troupe server`) names the server's home here too.\n\nExamples:\n  $ troupe server token create alice --home /srv/troupe\n  $ troupe server token create ops --admin --home /srv/troupe",
    )
    .action(
      action(async (name: string, options: { admin: boolean }) => {
        if (!/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) throw new UsageError(`a user name is 1-64 letters, digits, or _ . @ -; got \`${name}\``);
        // commander gives `--home` to `server`, wherever it is written.
        useHome((command.opts() as { home?: string }).home);
        const { openStore } = await import("./home.js");
        const { store } = openStore();
        try {
          process.stdout.write(store.tokens.create(name, options.admin) + "\n");
        } finally {
          store.close();
        }
        return 0;
      }),
    );
  return command;
}

async function serve(options: ServerOptions): Promise<number> {
  useHome(options.home);
  const [{ openStore, troupeHome }, { HttpThreadLink, RunManager }, { readServerConfig, openPool }, { FLAG_NAMING }] = await Promise.all([
    import("./home.js"),
    import("../server/index.js"),
    import("./server-config.js"),
    import("./choose-runtime.js"),
  ]);
  // Before anything that may log: the pools' checks, the recovery of earlier runs. A crash is the log's last line.
  const logDestination = { file: serverLogFile(troupeHome()), level: options.logLevel ?? logLevelFromEnv() ?? "info" };
  try {
    configureLog({ ...logDestination, maxBytes: options.logMaxSize, thread: "main" });
  } catch (error) {
    throw new UsageError(`cannot write the server's log ${logDestination.file} (${(error as Error).message})`);
  }
  process.on("uncaughtExceptionMonitor", (error, origin) => log.fatal({ err: error, origin }, "the server crashed"));
  const configs = options.config
    ? readServerConfig(options.config)
    : [
        {
          name: "default",
          runtime: options.runtime,
          isolation: options.isolation,
          max_retries: 0,
          max_parallel: undefined,
          task_user: options.taskUser,
          privileged_allowed: options.allowPrivileged === true,
          host_network_allowed: options.allowHostNetwork === true,
          allowed_mounts: [],
          default_mounts: [],
        },
      ];
  // Each pool's runtime is chosen now, for all its runs, before anything is served: a pool that asks for containers
  // on an engine that cannot start them stops the server here, with the engine's reason; one that chose the host
  // instead says why. The default pool's runtime options are flags.
  const opened = await Promise.all(configs.map((config) => openPool(config, troupeHome(), options.config ? undefined : FLAG_NAMING)));
  const pools = opened.map(({ pool }) => pool);
  // HTTP is served by a thread of its own (server/http-worker.ts), which keeps the records of running runs
  // from what this thread's store commits: a query is answered however busy the engines here are.
  const http = new HttpThreadLink();
  const { store, settled } = openStore({ onCommit: http.committed });
  const limits = { maxTasks: options.maxTasks, maxRunsPerUser: options.maxRunsPerUser };
  const manager = new RunManager(store, new Map(pools.map((p) => [p.name, p])), limits, http);
  const app = await http
    .start(
      { home: troupeHome(), host: options.host, port: options.port, privateWorkflows: options.privateWorkflows, log: logDestination },
      manager,
      (error) => {
        log.fatal({ err: error }, "the HTTP thread failed");
        process.stderr.write(`troupe server: the HTTP thread failed: ${error.message}\n`);
        process.exit(1);
      },
    )
    .catch((error: Error) => {
      throw new UsageError(`cannot serve on ${options.host}:${options.port}: ${error.message.replace(/^listen \w+: /, "")}`);
    });
  const address = app.address;
  // Before taking submissions (they wait meanwhile): the runs an earlier server left running with kept tasks go on here.
  const recovered = await manager.recover();
  http.open();
  // What the operator sees on stdout is in the log too, where the rest of the server's story is.
  const say = (line: string) => {
    log.info({}, line);
    process.stdout.write(`troupe server: ${line}\n`);
  };
  say(`listening on ${address} (home ${troupeHome()})`);
  for (const { pool, note } of opened) if (note) say(`pool ${pool.name}: note: ${note}`);
  if (settled.length) say(`runs whose troupe process had died are now FAILED_SERVER_ERROR: ${settled.join(", ")}`);
  if (recovered.resumed.length) say(`resumed the runs an earlier server left running: ${recovered.resumed.join(", ")}`);
  for (const { id, reason } of recovered.settled) say(`run ${id} is FAILED_SERVER_ERROR: ${reason}`);
  // What a killed server left (containers, networks) goes now, not with the next submission; resumed runs keep theirs.
  const spare = new Set(recovered.resumed);
  const keepsTasks = Promise.all(
    pools.map(({ backend }) =>
      backend
        .sweep(spare)
        .then((swept) => {
          if (swept.length) say(`removed what an earlier server left behind: ${swept.join("; ")}`);
          return backend.capabilities.tasksOutliveTroupe;
        })
        .catch((error: Error) => {
          log.warn({ err: error }, "could not sweep what earlier runs left");
          process.stderr.write(`troupe server: warning: could not sweep what earlier runs left: ${error.message}\n`);
          return false;
        }),
    ),
  ).then((keeps) => keeps.every(Boolean));
  await new Promise<void>((resolveStop) => {
    let signals = 0;
    const stop = async (signal: string) => {
      signals += 1;
      const keeps = await keepsTasks;
      if (keeps && signals === 1) {
        // Running tasks are kept: they go on without this process, and the next start resumes their runs.
        say(`${signal}: stopping; ${manager.running} running workflows go on and the next start resumes them`);
        manager.stopTaking();
        void Promise.all([app.close(), manager.endedRunsClosed(10_000)]).finally(() => {
          store.close();
          process.exit(0);
        });
      } else if (signals === 1) {
        // Tasks cannot outlive this process here: let the running workflows finish (reads go on being served).
        say(`${signal}: taking no new workflows; waiting for ${manager.running} running (${signal} again cancels them)`);
        void manager.drain().then(async () => {
          await app.close();
          store.close();
          resolveStop();
        });
      } else if (signals === 2 && !keeps) {
        say(`${signal}: canceling the running workflows`);
        void manager.cancelAll();
      }
    };
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGTERM", () => void stop("SIGTERM"));
    // A closed terminal: as a SIGTERM (the running workflows go on, or finish), never a crash.
    process.on("SIGHUP", () => void stop("SIGHUP"));
  });
  return 0;
}
