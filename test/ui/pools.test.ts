/**
 * The pools page in a real browser (Debian's Chromium) against a real `troupe server` whose pool has one task
 * slot: one workflow holds it, a second waits for it; the page shows the slot used, both running and one queued,
 * then everything given back once they end, read again when the server says a workflow changed (not on a
 * timer: nothing is read while nothing changes). The page is reached from the header's navigation, by keyboard.
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
let gateDir: string;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  const serverHome = home.outsideTmp();
  gateDir = home.outsideTmp();
  const config = join(home.outsideTmp(), "pools.yaml");
  writeFileSync(
    config,
    "pools:\n- name: one-slot\n  runtime: host\n  isolation: none\n  cpus: 2\n  memory: 4Gi\n  max_parallel: 1\n" +
      "- name: spare\n  runtime: host\n  isolation: none\n  cpus: 1\n  memory: 1Gi\n",
  );
  token = (await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home })).stdout.trim();
  server = await startServer(serverHome, ["--config", config]);
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  home?.remove();
});

const gated = (gate: string) => `workflow:
  name: ui-pools-${random()}
  tasks:
  - name: hold
    image: alpine:3.18
    command: ["sh", "-c", "while [ ! -e ${gate} ]; do sleep 0.1; done"]
`;

async function submit(spec: string): Promise<string> {
  const response = await fetch(`${server.url}/api/pool/one-slot/workflow`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ spec }),
  });
  const body = (await response.json()) as { id: string };
  expect(response.status, JSON.stringify(body)).toBe(201);
  return body.id;
}

describe.skipIf(!haveChromium())("the pools page, in Chromium", () => {
  it("shows each pool's capacity, what its workflows hold and how many wait, as it changes", async () => {
    const gate = join(gateDir, `gate-${random()}`);
    await submit(gated(gate));
    await submit(gated(gate));

    const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
    const reads: number[] = [];
    page.on("request", (request) => new URL(request.url()).pathname === "/api/pool" && reads.push(Date.now()));
    await page.goto(`${server.url}/login`);
    await page.evaluate(
      (t) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem("troupe.token", t),
      token,
    );
    await page.goto(`${server.url}/workflows`);
    // By keyboard, from the header's navigation.
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Pools" }).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/pools$/);

    const row = page.locator('tr[data-pool="one-slot"]');
    await expect.poll(() => row.locator(".tasks").textContent(), { timeout: 20_000 }).toBe("1 / 1");
    await expect.poll(() => row.locator(".queued").textContent(), { timeout: 10_000 }).toBe("1");
    expect(await row.locator(".running").textContent()).toBe("2");
    expect(await row.locator(".cpus").textContent()).toMatch(/^[\d.]+ \/ 2$/);
    expect(await row.locator(".memory").textContent()).toMatch(/ \/ 4\.0 GiB$/);
    expect(await row.locator(".tasks .usage").getAttribute("class")).toContain("full");
    expect(await page.getByRole("meter", { name: "one-slot: task slots used" }).getAttribute("value")).toBe("1");
    const spare = page.locator('tr[data-pool="spare"]');
    expect(await spare.locator(".tasks").textContent()).toBe("0 / 64");
    expect(await spare.locator("td").first().textContent()).toBe("host");
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "pools-busy");

    // While nothing changes the page reads nothing (its backstop is 15 s away; a page that polled would read every 3 s)...
    const quietFrom = reads.length;
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(reads.length - quietFrom).toBe(0);
    // ... and when both end, the server's word of it has the page read again: the pool free.
    writeFileSync(gate, "");
    await expect.poll(() => row.locator(".running").textContent(), { timeout: 10_000 }).toBe("0");
    expect(await row.locator(".tasks").textContent()).toBe("0 / 1");
    expect(await row.locator(".queued").textContent()).toBe("0");
    await screenshot(page, "pools-idle");
    await page.close();
  }, 90_000);
});
