/** `troupe ui`: the web UI over this machine's local history (server/local-ui.ts). */
import { resolve } from "node:path";
import { Command } from "commander";
import { UsageError } from "../errors/index.js";
import { action, parseNonNegativeInt } from "./shared.js";

export function uiCommand(): Command {
  return new Command("ui")
    .description("serve the web UI over the local history (the runs of `troupe run`) on 127.0.0.1, until Ctrl-C")
    .option("--port <n>", "port to listen on (0: any free port)", parseNonNegativeInt("--port"), 0)
    .option("--home <dir>", "whose history (default $TROUPE_HOME, else ~/.troupe)")
    .addHelpText(
      "after",
      `
The first line on stdout is "troupe ui: open URL". The URL carries a token made for
this process alone (in its #fragment, which the browser keeps to itself): other
users of this machine can reach the port, not the history. Runs can be followed and
canceled; submitting needs a troupe server.

Examples:
  $ troupe ui
  $ troupe ui --port 8090 --home /data/troupe-home`,
    )
    .action(
      action(async (options: { port: number; home?: string }) => {
        if (options.home) process.env.TROUPE_HOME = resolve(options.home);
        const [{ openStore }, { startLocalUi }] = await Promise.all([import("./home.js"), import("../server/index.js")]);
        const { store } = openStore();
        const started = await startLocalUi(store, options.port).catch((error: Error) => {
          store.close();
          throw new UsageError(`cannot serve on 127.0.0.1:${options.port}: ${error.message.replace(/^listen \w+: /, "")}`);
        });
        process.stdout.write(`troupe ui: open ${started.url}\n`);
        await new Promise<void>((stopped) => {
          const stop = () => {
            // A page left open keeps its live streams (and keep-alive connections) open: they end with the UI,
            // after a second for answers under way, rather than holding its exit.
            setTimeout(() => started.app.server.closeAllConnections(), 1_000).unref();
            void started.app.close().finally(stopped);
          };
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
          process.once("SIGHUP", stop);
        });
        store.close();
        return 0;
      }),
    );
}
