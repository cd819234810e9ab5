/**
 * The UI's live pages across a restart of the server (real, on a fixed
 * loopback port, in Chromium): the logs page and the workflow page connect
 * again once the server is back, and show the stream sent again from its
 * start in place of what they had (no line or event twice), following on
 * as the resumed run goes.
 */
import * as net from "node:net";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";
import { haveChromium, launchBrowser, signIn } from "./browser.js";

let home: TestHome;
let serverHome: string;
let server: StartedServer | undefined;
let port: number;
let token: string;
let browser: Browser | undefined;

/** A port free now (the servers of this file take it in turn). */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const serve = () => startServer(serverHome, ["--runtime", "host", "--isolation", "none", "--port", String(port)]);
const base = () => `http://127.0.0.1:${port}`;
const authorized = { headers: { authorization: "" } };

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  serverHome = home.outsideTmp();
  token = (await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home })).stdout.trim();
  authorized.headers.authorization = `Bearer ${token}`;
  port = await freePort();
  server = await serve();
}, 200_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  home?.remove();
});

/** The tick numbers a page shows, in order. */
const ticks = (text: string | null) => [...(text ?? "").matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));

describe.skipIf(!haveChromium())("the UI across a server restart", () => {
  it("follows the logs and the events again once the server is back, nothing shown twice", async () => {
    const spec = `workflow:\n  name: steady-${random()}\n  tasks:\n  - name: ticker\n    image: alpine:3.18\n    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"]\n`;
    const submitted = await fetch(`${base()}/api/pool/default/workflow`, {
      method: "POST",
      headers: { ...authorized.headers, "content-type": "application/json" },
      body: JSON.stringify({ spec }),
    });
    const { id } = (await submitted.json()) as { id: string };

    browser = await launchBrowser();
    const logs = await browser.newPage();
    await logs.goto(`${base()}/workflows/${id}/logs?task=ticker`);
    await signIn(logs, token);
    const log = logs.locator("pre.log");
    await expect.poll(async () => ticks(await log.textContent()).length, { timeout: 20_000 }).toBeGreaterThan(3);

    const page = await browser.newPage();
    await page.goto(`${base()}/workflows/${id}`);
    await signIn(page, token);
    const events = page.getByRole("table", { name: "Events" }).locator("tbody tr");
    await page.locator('tr[data-task="ticker"] .badge', { hasText: /^RUNNING$/ }).waitFor();

    // The server stops (its task goes on under its keeper), and starts again on the same port.
    const stopping = server!.child;
    await new Promise<void>((resolve) => {
      stopping.once("exit", () => resolve());
      stopping.kill("SIGTERM");
    });
    const before = ticks(await log.textContent()).at(-1)!;
    server = await serve();

    // Followed on: ticks written after the restart arrive, each tick once, in order from the first.
    await expect.poll(async () => ticks(await log.textContent()).at(-1)! > before + 5, { timeout: 30_000 }).toBe(true);
    const shown = ticks(await log.textContent());
    expect(shown).toEqual(shown.map((_, i) => i + 1));
    expect((await log.textContent())!.match(/── ticker, retry 0 ──/g)).toHaveLength(1);

    // The workflow page too: canceled now, it shows the end, and each event the server recorded once.
    const cancel = await fetch(`${base()}/api/workflow/${id}/cancel`, { method: "POST", ...authorized });
    expect(cancel.status).toBe(202);
    await page.locator(".title .badge", { hasText: /^FAILED_CANCELED$/ }).waitFor({ timeout: 30_000 });
    const recorded = ((await (await fetch(`${base()}/api/workflow/${id}/events`, authorized)).json()) as { events: unknown[] }).events;
    await expect.poll(() => events.count(), { timeout: 10_000 }).toBe(recorded.length);
    await expect.poll(() => logs.getByRole("status").textContent(), { timeout: 10_000 }).toContain("the workflow has ended");
  }, 150_000);
});
