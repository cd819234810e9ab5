/**
 * The workflow page's timeline in a real browser (Debian's Chromium) against a real `troupe server` (host runtime,
 * its pool retrying once): a group of two behind its barrier, one of them rescheduled once, then a group after it.
 * Every attempt is a row with its phases, its group's barrier line and its start skew; the retry a row of its own.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";
import { haveChromium, launchBrowser, screenshot, seriousViolations } from "./browser.js";

let home: TestHome;
let server: StartedServer;
let browser: Browser;
let token: string;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  const serverHome = home.outsideTmp();
  const config = join(home.outsideTmp(), "pools.yaml");
  writeFileSync(config, "pools:\n- name: default\n  runtime: host\n  isolation: none\n  max_retries: 1\n");
  token = (await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home })).stdout.trim();
  server = await startServer(serverHome, ["--config", config]);
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  home?.remove();
});

const spec = `workflow:
  name: ui-timeline-${random()}
  groups:
  - name: pair
    tasks:
    - name: lead
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "sleep 1.5"]
    - name: flaky
      image: alpine:3.18
      command: ["sh", "-c", "sleep 0.3; if [ \\"$TROUPE_RETRY_ID\\" = 0 ]; then exit 1; fi"]
      exitActions:
        RESCHEDULE: "1"
  - name: after
    tasks:
    - name: last
      image: alpine:3.18
      command: ["sh", "-c", "sleep 0.2"]
      inputs:
      - task: lead
`;

describe.skipIf(!haveChromium())("the workflow page's timeline, in Chromium", () => {
  it("draws every attempt's phases, its group's barrier and start skew, and a retry as a row of its own", async () => {
    const response = await fetch(`${server.url}/api/pool/default/workflow`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ spec }),
    });
    const { id } = (await response.json()) as { id: string };
    expect(response.status).toBe(201);

    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${server.url}/login`);
    await page.evaluate(
      (t) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem("troupe.token", t),
      token,
    );
    await page.goto(`${server.url}/workflows/${id}`);
    await page.locator(".title .badge", { hasText: /^COMPLETED$/ }).waitFor({ timeout: 30_000 });

    const table = page.getByRole("table", { name: "Timeline" });
    await expect
      .poll(() => table.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-row"))))
      .toEqual(["lead#0", "flaky#0", "flaky#1", "last#0"]);
    const row = (key: string) => table.locator(`tr[data-row="${key}"]`);
    // The first try of flaky ran and was rescheduled; its retry came up in a fresh sandbox and completed.
    expect(await row("flaky#0").locator(".phase-running").count()).toBe(1);
    expect(await row("flaky#0").locator(".outcome").textContent()).toBe("RESCHEDULED");
    expect(await row("flaky#1").locator(".phase-initializing").count()).toBe(1);
    expect(await row("flaky#1").locator(".outcome").textContent()).toBe("COMPLETED");
    expect(await row("flaky#1").locator("th").textContent()).toContain("retry 1");
    // `last` waited for the pair while it ran: its waiting bar is as wide as the pair's run at least.
    const lastWait = await row("last#0").locator(".phase-waiting").boundingBox();
    const leadRun = await row("lead#0").locator(".phase-running").boundingBox();
    expect(lastWait!.x + lastWait!.width).toBeGreaterThanOrEqual(leadRun!.x + leadRun!.width - 2);
    // The barrier line of each group, and a start skew after it (the lead starts first, a few ms at most after it).
    expect(await row("lead#0").locator(".barrier").count()).toBe(1);
    expect(await row("last#0").locator(".barrier").count()).toBe(1);
    expect(await row("lead#0").locator(".skew").textContent()).toMatch(/^\+\d+ ms$/);
    expect(await row("flaky#0").locator(".skew").textContent()).toMatch(/^\+[\d.]+ (ms|s)$/);
    expect(await row("flaky#1").locator(".skew").textContent()).toBe("–");
    // Read out as words for screen readers.
    expect(await row("flaky#0").locator(".bars").getAttribute("aria-label")).toMatch(
      /waiting for resources .*preparing its sandbox .*running .*now RESCHEDULED, started .* after the barrier/,
    );
    expect(await seriousViolations(page)).toEqual([]);
    await table.scrollIntoViewIfNeeded();
    await screenshot(page, "workflow-timeline");
    await page.close();
  }, 90_000);

  it("follows statuses from the pushed events, reading the whole record again only now and then", async () => {
    // Eight groups one after another, each a burst of events 0.4 s after the last.
    const groups = Array.from({ length: 8 }, (_, i) => {
      const inputs = i === 0 ? "" : `\n      inputs:\n      - task: t${i - 1}`;
      return `  - name: g${i}\n    tasks:\n    - name: t${i}\n      image: alpine:3.18\n      command: ["sh", "-c", "sleep 0.4"]${inputs}`;
    });
    const chain = `workflow:\n  name: ui-chain-${random()}\n  groups:\n${groups.join("\n")}\n`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/login`);
    await page.evaluate(
      (t) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem("troupe.token", t),
      token,
    );
    const response = await fetch(`${server.url}/api/pool/default/workflow`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ spec: chain }),
    });
    const { id } = (await response.json()) as { id: string };
    const reads: string[] = [];
    page.on("request", (request) => new URL(request.url()).pathname === `/api/workflow/${id}` && reads.push(request.url()));
    await page.goto(`${server.url}/workflows/${id}`);
    // Seen live: a task running while the one after it still waits.
    await expect.poll(() => page.locator('tr[data-task="t3"] .badge').textContent(), { timeout: 30_000 }).toBe("RUNNING");
    expect(await page.locator('tr[data-task="t4"] .badge').textContent()).toBe("WAITING");
    await page.locator(".title .badge", { hasText: /^COMPLETED$/ }).waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator('tr[data-task="t7"] .badge').textContent()).toBe("COMPLETED");
    // More than three seconds of bursts (at least 16 of them): the first read, one every 2 s at most, one at the end.
    expect(reads.length).toBeGreaterThanOrEqual(2);
    expect(reads.length).toBeLessThanOrEqual(5);
    await page.close();
  }, 90_000);
});
