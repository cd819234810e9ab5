/**
 * GET /api/workflow/changes over real HTTP against a real server: the ids of
 * workflows that change, pushed as they do (the web UI's list reads again when
 * told); with `--private-workflows` another user's workflows never appear
 * (as good as absent, as on every route), an admin's stream has them; no
 * token, 401. `troupe ui`'s local history has no such stream (404).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "./helpers.js";

let home: TestHome;
let server: StartedServer;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  const serverHome = home.outsideTmp();
  for (const [name, admin] of [
    ["alice", false],
    ["bob", false],
    ["boss", true],
  ] as const)
    tokens[name] = (
      await troupe(["server", "token", "create", name, "--home", serverHome, ...(admin ? ["--admin"] : [])], { home: home.home })
    ).stdout.trim();
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none", "--private-workflows"]);
}, 200_000);
afterAll(async () => {
  await server?.stop();
  home?.remove();
});

/** The ids the changes stream of `token` says changed, read until `until` holds for them (or `ms` ran out). */
async function watchChanges(token: string | undefined) {
  const abort = new AbortController();
  const response = await fetch(`${server.url}/api/workflow/changes`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: abort.signal,
  });
  const seen = new Set<string>();
  let lines = 0;
  const reading = (async () => {
    if (!response.ok || !response.body) return;
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let at = buffer.indexOf("\n"); at >= 0; at = buffer.indexOf("\n")) {
          const line = JSON.parse(buffer.slice(0, at)) as { type: string; ids?: string[] };
          buffer = buffer.slice(at + 1);
          lines++;
          for (const id of line.ids ?? []) seen.add(id);
        }
      }
    } catch {
      // Aborted: the test is done with it.
    }
  })();
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    seen,
    lines: () => lines,
    close: async () => {
      abort.abort();
      await reading;
    },
  };
}

async function submit(token: string): Promise<string> {
  const spec = `workflow:\n  name: pushed-${random(3)}\n  tasks:\n  - {name: t, image: alpine:3.18, command: [sh, -c, "sleep 0.3"]}\n`;
  const response = await fetch(`${server.url}/api/pool/default/workflow`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ spec }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

async function until(check: () => boolean, ms = 20_000): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}

describe("GET /api/workflow/changes", () => {
  it("pushes the ids of one's own workflows as they change, never another user's; an admin's has both", async () => {
    const [alice, bob, boss] = await Promise.all([watchChanges(tokens.alice), watchChanges(tokens.bob), watchChanges(tokens.boss)]);
    try {
      expect(alice.status).toBe(200);
      expect(alice.contentType).toContain("application/x-ndjson");
      const bobs = await submit(tokens.bob!);
      const alices = await submit(tokens.alice!);
      expect(await until(() => alice.seen.has(alices) && bob.seen.has(bobs) && boss.seen.has(alices) && boss.seen.has(bobs))).toBe(true);
      // Each run changes many times (submitted, scheduled, running, completed): batched, not a line per change.
      expect(alice.lines()).toBeGreaterThan(0);
      // Give bob's run every chance to show up in alice's stream: it never does.
      await until(() => false, 1_500);
      expect([...alice.seen]).toEqual([alices]);
      expect([...bob.seen]).toEqual([bobs]);
    } finally {
      await Promise.all([alice.close(), bob.close(), boss.close()]);
    }
  }, 60_000);

  it("without a token: 401", async () => {
    const anonymous = await watchChanges(undefined);
    await anonymous.close();
    expect(anonymous.status).toBe(401);
  });
});
