/** `troupe server` and `troupe server token create`. */
import { resolve } from "node:path";
import { Command, Option } from "commander";
import { UsageError } from "../errors/index.js";
import { action, parseNonNegativeInt } from "./shared.js";

interface ServerOptions {
  host: string;
  port: number;
  home?: string;
  runtime?: "host" | "container";
  isolation?: "netns" | "none";
  maxTasks: number;
  maxRunsPerUser: number;
  config?: string;
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
      new Option("--runtime <runtime>", "the default pool's runtime (default: container when an engine answers)").choices([
        "host",
        "container",
      ]),
    )
    .addOption(new Option("--isolation <mode>", "host runtime isolation").choices(["netns", "none"]))
    .option("--config <file>", "the pools to offer (YAML; see src/cli/server-config.ts); default: one pool, `default`, this machine")
    .option("--max-tasks <n>", "largest workflow accepted, in tasks", parseNonNegativeInt("--max-tasks"), 100_000)
    .option("--max-runs-per-user <n>", "workflows one user may have running at once", parseNonNegativeInt("--max-runs-per-user"), 20)
    .addHelpText(
      "after",
      `
The first line on stdout is "troupe server: listening on URL". Every API call but
/api/health needs a token: \`troupe server token create NAME\` makes one.

Examples:
  $ troupe server token create alice --home /srv/troupe
  $ troupe server --home /srv/troupe --port 8080`,
    )
    .action(action((options: ServerOptions) => serve(options)));
  command
    .command("token")
    .description("API tokens")
    .command("create")
    .description("make a token for a user and print it (alone, on stdout); it is stored hashed and cannot be shown again")
    .argument("<name>", "the user's name")
    .option("--admin", "may cancel anyone's workflows", false)
    .addHelpText("after", "\n--home DIR (of `troupe server`) names the server's home here too.")
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
  const [{ openStore, troupeHome }, { buildApp, RunManager }, { readServerConfig, poolFrom }] = await Promise.all([
    import("./home.js"),
    import("../server/index.js"),
    import("./server-config.js"),
  ]);
  const configs = options.config
    ? readServerConfig(options.config)
    : [{ name: "default", runtime: options.runtime, isolation: options.isolation, max_retries: 0, max_parallel: 64 }];
  const pools = configs.map(poolFrom);
  const { store, settled } = openStore();
  const manager = new RunManager(store, new Map(pools.map((p) => [p.name, p])), {
    maxTasks: options.maxTasks,
    maxRunsPerUser: options.maxRunsPerUser,
  });
  const app = await buildApp({ store, manager });
  const address = await app.listen({ host: options.host, port: options.port });
  process.stdout.write(`troupe server: listening on ${address} (home ${troupeHome()})\n`);
  if (settled.length)
    process.stdout.write(`troupe server: runs whose troupe process had died are now FAILED_SERVER_ERROR: ${settled.join(", ")}\n`);
  // What a killed server left (containers, networks) goes now, not with the next submission.
  for (const pool of pools)
    void pool
      .runtime()
      .then(async (runtime) => {
        const swept = await runtime.sweep().finally(() => runtime.close());
        if (swept.length) process.stdout.write(`troupe server: removed what an earlier server left behind: ${swept.join("; ")}\n`);
      })
      .catch((error: Error) => process.stderr.write(`troupe server: warning: could not sweep what earlier runs left: ${error.message}\n`));
  // A first SIGTERM/SIGINT stops taking workflows and lets the running ones finish (reads go on
  // being served meanwhile); a second cancels them. Then the server closes and exits.
  await new Promise<void>((resolveStop) => {
    let signals = 0;
    const stop = (signal: string) => {
      signals += 1;
      if (signals === 1) {
        process.stdout.write(
          `troupe server: ${signal}: taking no new workflows; waiting for ${manager.running} running (${signal} again cancels them)\n`,
        );
        void manager.drain().then(async () => {
          await app.close();
          store.close();
          resolveStop();
        });
      } else if (signals === 2) {
        process.stdout.write(`troupe server: ${signal}: canceling the running workflows\n`);
        void manager.cancelAll();
      }
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
  });
  return 0;
}
