/**
 * `troupe ui`: the web UI over the local history of a TROUPE_HOME (the runs of
 * `troupe run`), served by the API's own app on loopback. Loopback is not
 * private: every local user can connect to it. So the API takes one token,
 * random, made at start and held only in memory; it is printed to whoever
 * started `troupe ui` in the URL's fragment (which browsers never send, so it
 * is in no request line, log or Referer), and it dies with the process.
 * Submitting and restarting need a server's pools: refused here. Canceling
 * asks the `troupe run` driving the run, as `troupe cancel` does.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { RunStore, TokenOwner } from "../store/index.js";
import { isFinal } from "../model/index.js";
import { buildApp } from "./app.js";
import { refusal } from "./error-reply.js";
import type { RunControl } from "./run-manager.js";

export interface LocalUi {
  /** The page to open, with the token in its fragment. */
  url: string;
  app: FastifyInstance;
}

const LOCAL_USER: TokenOwner = { name: "local", admin: true };

/** What the API may change in local history: only a cancel, which the run's own process carries out. */
export function localRunControl(store: RunStore): RunControl {
  const notHere = (what: string) =>
    refusal("forbidden", "E_READ_ONLY", `troupe ui shows local history: it cannot ${what} (use \`troupe run\`, or a troupe server)`);
  return {
    submit: async () => notHere("submit workflows"),
    restart: async () => notHere("restart workflows"),
    cancel: (id, force, message) => {
      const header = store.runHeader(id);
      if (!header || isFinal(header.status)) return false;
      const reason = `canceled from troupe ui${message ? `: ${message}` : ""}`;
      store.cancelRequests.request(id, { force, reason, time: Date.now() });
      return true;
    },
  };
}

/** Serves `store` on 127.0.0.1:`port` (0: any free port) until the app is closed. */
export async function startLocalUi(store: RunStore, port: number, uiDir?: string): Promise<LocalUi> {
  const token = randomBytes(32).toString("base64url");
  const expected = Buffer.from(token);
  const authenticate = (given: string): TokenOwner | undefined => {
    const buffer = Buffer.from(given);
    return buffer.length === expected.length && timingSafeEqual(buffer, expected) ? LOCAL_USER : undefined;
  };
  const app = await buildApp({ store, manager: localRunControl(store), authenticate, ui: { dir: uiDir, readOnly: true } });
  // Loopback only, whatever the machine's interfaces: never --host.
  const address = await app.listen({ host: "127.0.0.1", port });
  return { url: `${address}/#token=${token}`, app };
}
