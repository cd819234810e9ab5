/**
 * A task's log in a real browser (Debian's Chromium) against a real `troupe server` (host runtime): its ANSI
 * colours drawn (not stripped), a search that finds and marks the lines, and the download of its plain text.
 */
import { readFileSync } from "node:fs";
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
  token = (await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home })).stdout.trim();
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  home?.remove();
});

/** What page.evaluate's functions reach in the page (this project's TypeScript has no DOM types; they run there, so no helper of this file). */
interface InPage {
  getComputedStyle(element: unknown): { color: string; fontWeight: string };
}

const spec = `workflow:
  name: ui-logs-${random()}
  tasks:
  - name: trainer
    image: alpine:3.18
    command: ["sh", "-c", "printf 'epoch 1 loss 0.9\\\\n\\\\033[31merror: loss is high\\\\033[0m\\\\n\\\\033[1;32mepoch 2 LOSS 0.4\\\\033[0m\\\\ndone\\\\n'"]
`;

describe.skipIf(!haveChromium())("a task's log, in Chromium", () => {
  it("draws its colours, finds lines, and downloads its plain text", async () => {
    const response = await fetch(`${server.url}/api/pool/default/workflow`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ spec }),
    });
    const { id } = (await response.json()) as { id: string };
    expect(response.status).toBe(201);
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    await page.goto(`${server.url}/login`);
    await page.evaluate(
      (t) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem("troupe.token", t),
      token,
    );
    await page.goto(`${server.url}/workflows/${id}/logs?task=trainer`);
    await page.getByRole("status").filter({ hasText: "the workflow has ended" }).waitFor({ timeout: 30_000 });

    // Colours drawn: the red line in the readable red, the green one bold; no escape codes in the text.
    const log = page.locator("pre.log");
    expect(await log.textContent()).toBe("── trainer, retry 0 ──\nepoch 1 loss 0.9\nerror: loss is high\nepoch 2 LOSS 0.4\ndone\n");
    const red = log.locator("span[style]", { hasText: "error: loss is high" });
    expect(await red.evaluate((el) => (globalThis as unknown as InPage).getComputedStyle(el).color)).toBe("rgb(255, 85, 85)");
    const green = log.locator("span[style]", { hasText: "epoch 2 LOSS 0.4" });
    expect(
      await green.evaluate((el) => {
        const style = (globalThis as unknown as InPage).getComputedStyle(el);
        return [style.color, style.fontWeight];
      }),
    ).toEqual(["rgb(85, 255, 85)", "700"]);

    // Search: every line with "loss", whatever its case, marked; Next goes from one to the next.
    const search = page.getByRole("searchbox", { name: "Search the log" });
    await search.fill("loss");
    expect(await log.locator(".log-line.match").count()).toBe(3);
    expect(await log.locator("mark").allTextContents()).toEqual(["loss", "loss", "LOSS"]);
    expect(await page.locator(".match-count").textContent()).toBe("line 1 of 3 that match");
    await search.press("Enter");
    expect(await page.locator(".match-count").textContent()).toBe("line 2 of 3 that match");
    expect(await log.locator(".log-line.current").textContent()).toBe("error: loss is high\n");
    await page.getByRole("button", { name: "Previous" }).click();
    expect(await log.locator(".log-line.current").textContent()).toBe("epoch 1 loss 0.9\n");
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "logs-colours-search");
    await search.fill("nothing like it");
    expect(await page.locator(".match-count").textContent()).toBe("no lines match");

    // Download: the log as plain text, named after the workflow and task.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download" }).click()]);
    expect(download.suggestedFilename()).toBe(`${id}-trainer.log`);
    expect(readFileSync((await download.path())!, "utf8")).toBe(
      "── trainer, retry 0 ──\nepoch 1 loss 0.9\nerror: loss is high\nepoch 2 LOSS 0.4\ndone\n",
    );
    await page.close();
  }, 90_000);
});
