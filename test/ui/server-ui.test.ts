/**
 * The web UI in a real browser (Debian's Chromium, playwright-core) against a
 * real `troupe server` on loopback with a temporary home: log in through the
 * page, follow workflows submitted through the API as they run (statuses
 * pushed by the server's stream, the page never reloaded), a task's log as it
 * is written, a cancel from the page; a token the server refuses sends the
 * user back to the login page. Every page passes axe's WCAG A/AA checks
 * without serious violations; screenshots go to test-artefacts/ui/.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestHome, ensureBuilt, random, troupe } from "../run/helpers.js";
import { startServer, type StartedServer } from "../server/helpers.js";
import { haveChromium, launchBrowser, screenshot, seriousViolations, signIn } from "./browser.js";

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
  token = (await troupe(["server", "token", "create", "alice", "--home", serverHome], { home: home.home })).stdout.trim();
  server = await startServer(serverHome, ["--runtime", "host", "--isolation", "none"]);
  browser = await launchBrowser();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  home?.remove();
});

async function submit(spec: string): Promise<string> {
  const response = await fetch(`${server.url}/api/pool/default/workflow`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ spec }),
  });
  const body = (await response.json()) as { id: string };
  expect(response.status, JSON.stringify(body)).toBe(201);
  return body.id;
}

async function statusOf(id: string, task?: string): Promise<string> {
  const response = await fetch(`${server.url}/api/workflow/${id}`, { headers: { authorization: `Bearer ${token}` } });
  const record = (await response.json()) as { status: string; groups: { tasks: { name: string; status: string }[] }[] };
  if (task === undefined) return record.status;
  return record.groups.flatMap((g) => g.tasks).find((t) => t.name === task)!.status;
}

async function eventsOf(id: string): Promise<{ to: string; reason: string }[]> {
  const response = await fetch(`${server.url}/api/workflow/${id}/events`, { headers: { authorization: `Bearer ${token}` } });
  return ((await response.json()) as { events: { to: string; reason: string }[] }).events;
}

/** Two groups, the second taking the first's output; the lead of the first waits for the test's gate file. */
const gated = (gate: string) => `{# a template's comment: in the spec as submitted, not as it ran #}
workflow:
  name: ui-gated-${random()}
  groups:
  - name: produce
    tasks:
    - name: maker
      lead: true
      image: alpine:3.18
      command: ["sh", "-c", "echo started; while [ ! -e ${gate} ]; do sleep 0.1; done; echo made > {{output}}/thing.txt; echo finished"]
    - name: helper
      image: alpine:3.18
      command: ["sh", "-c", "echo helping"]
  - name: consume
    tasks:
    - name: user
      image: alpine:3.18
      command: ["sh", "-c", "cat {{input:0}}/thing.txt"]
      inputs:
      - task: maker
`;

const ticker = `workflow:
  name: ui-ticker-${random()}
  tasks:
  - name: ticker
    image: alpine:3.18
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done"]
`;

async function expectAccessible(page: Page): Promise<void> {
  expect(await seriousViolations(page)).toEqual([]);
}

/** What page.evaluate's functions reach in the page (this project's TypeScript has no DOM types; they run there, so no helper of this file). */
interface InPage {
  sameDocument?: boolean;
  sessionStorage: { getItem(key: string): string | null; setItem(key: string, value: string): void };
}

/** Whether every workflow of the server has ended (nothing of the other tests still changes). */
async function statusesQuiet(): Promise<boolean> {
  const response = await fetch(`${server.url}/api/workflow?all_users=true`, { headers: { authorization: `Bearer ${token}` } });
  const { workflows } = (await response.json()) as { workflows: Array<{ status: string }> };
  return workflows.every((w) => /^(COMPLETED|FAILED)/.test(w.status));
}

const badge = (page: Page, status: string) => page.locator(".title .badge", { hasText: new RegExp(`^${status}$`) });

describe.skipIf(!haveChromium())("the web UI of troupe server, in Chromium", () => {
  it("signs in, follows a workflow live through its graph, tasks and logs, and cancels one", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const gate = join(gateDir, `gate-${random()}`);
    const first = await submit(gated(gate));

    // No token yet: the UI's path is answered, and the page sends the user to login.
    await page.goto(`${server.url}/workflows`);
    await page.waitForURL(/\/login\?next=%2Fworkflows/);
    await expectAccessible(page);
    await screenshot(page, "login");
    await signIn(page, token);
    await page.waitForURL(/\/workflows$/);

    // The list: the workflow, linked by id, its status kept up to date.
    const row = page.locator(`tr[data-workflow="${first}"]`);
    await row.getByRole("link", { name: first }).waitFor();
    await expect.poll(() => row.locator(".badge").textContent(), { timeout: 15_000 }).toBe("RUNNING");
    await expectAccessible(page);
    await screenshot(page, "workflows");

    // The workflow page: groups as nodes (the lead marked), the input as an edge, the tasks with reasons.
    await row.getByRole("link", { name: first }).click();
    await page.waitForURL(new RegExp(`/workflows/${first}$`));
    await badge(page, "RUNNING").waitFor();
    await page.locator('.react-flow__node [data-group="produce"]').waitFor();
    await page.locator('.react-flow__node [data-group="consume"]').waitFor();
    expect(await page.locator(".react-flow__edge").count()).toBe(1);
    expect(await page.locator('[data-group="produce"] .lead-mark').textContent()).toContain("lead");
    await expect.poll(() => page.locator('tr[data-task="maker"] .badge').textContent()).toBe("RUNNING");
    expect(await page.locator('tr[data-task="user"] .badge').textContent()).toBe("WAITING");
    // Marked now, to show the page is never reloaded while the statuses change.
    await page.evaluate(() => ((globalThis as unknown as InPage).sameDocument = true));
    await expectAccessible(page);
    await screenshot(page, "workflow-running");

    writeFileSync(gate, "");
    await badge(page, "COMPLETED").waitFor({ timeout: 30_000 });
    expect(await page.locator('tr[data-task="user"] .badge').textContent()).toBe("COMPLETED");
    expect(await page.locator('[data-group="consume"]').getAttribute("class")).toContain("tone-done");
    // Still drawn after the records that changed it (React Flow hides a node it takes for new and unmeasured).
    for (const node of await page.locator(".react-flow__node").all()) expect(await node.isVisible()).toBe(true);
    expect(await page.locator(".react-flow__node").count()).toBe(2);
    expect(await page.evaluate(() => (globalThis as unknown as InPage).sameDocument)).toBe(true);
    await page.getByText("Spec, as it ran").click();
    expect(await page.getByLabel("Spec as it ran").textContent()).toContain("- task: maker");
    expect(await page.getByLabel("Spec as it ran").textContent()).not.toContain("a template's comment");
    await page.getByText("Spec, as submitted").click();
    await expect.poll(() => page.getByLabel("Spec as submitted").textContent()).toContain("{# a template's comment");
    await screenshot(page, "workflow-completed");

    // Every task's output, interleaved as `troupe workflow logs` prints it, each line after its task's name.
    await page.getByRole("link", { name: "Logs", exact: true }).click();
    await page.waitForURL(new RegExp(`/workflows/${first}/logs$`));
    await page.getByRole("status").filter({ hasText: "the workflow has ended" }).waitFor();
    const interleaved = (await page.locator("pre.log").textContent())!.split("\n");
    expect(interleaved).toEqual(expect.arrayContaining(["maker | started", "maker | finished", "helper | helping", "user | made"]));
    await expectAccessible(page);
    await screenshot(page, "logs-interleaved");

    // A task's log, followed as it is written: more ticks arrive while the task is still running.
    const second = await submit(ticker);
    await page.goto(`${server.url}/workflows/${second}`);
    await page.locator('tr[data-task="ticker"]').getByRole("link", { name: "Logs of ticker" }).click();
    await page.waitForURL(/\/logs\?task=ticker$/);
    const log = page.locator("pre.log");
    await expect.poll(() => log.textContent(), { timeout: 20_000 }).toContain("tick 2");
    await expect.poll(() => log.textContent(), { timeout: 20_000 }).toContain("tick 6");
    expect(await statusOf(second, "ticker")).toBe("RUNNING");
    expect(await page.getByRole("status").textContent()).toContain("following live");
    await expectAccessible(page);
    await screenshot(page, "logs-following");

    // Cancel from the workflow page: the status changes there, pushed by the server.
    await page.getByRole("link", { name: second }).click();
    await badge(page, "RUNNING").waitFor();
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("status").filter({ hasText: "Cancel asked" }).waitFor();
    await badge(page, "FAILED_CANCELED").waitFor({ timeout: 30_000 });
    expect(await page.getByRole("button", { name: "Cancel" }).count()).toBe(0);
    expect(await page.locator('.react-flow__node:has([data-group="ticker-group"])').isVisible()).toBe(true);
    // The status changes as pushed, newest first: the workflow's own end among them, with the reason.
    const events = page.getByRole("table", { name: "Events" });
    const recorded = await eventsOf(second);
    await expect.poll(() => events.locator("tbody tr").count(), { timeout: 10_000 }).toBe(recorded.length);
    const newestFirst = await events.locator("tbody tr").allTextContents();
    expect(newestFirst[0]).toContain(recorded.at(-1)!.to);
    expect(newestFirst.at(-1)).toContain(recorded[0]!.to);
    expect(newestFirst.some((row) => row.includes("FAILED_CANCELED") && row.includes("from the web UI (by alice)"))).toBe(true);
    await screenshot(page, "workflow-canceled");
    expect(await statusOf(second)).toBe("FAILED_CANCELED");

    // Restart: a new workflow of the same spec, whose page the UI opens; canceled in turn.
    await page.getByRole("button", { name: "Restart" }).click();
    await page.waitForURL((address) => !address.pathname.endsWith(`/${second}`));
    const third = decodeURIComponent(new URL(page.url()).pathname.split("/").pop()!);
    expect(third).not.toBe(second);
    await badge(page, "RUNNING").waitFor({ timeout: 30_000 });
    await page.getByRole("button", { name: "Cancel" }).click();
    await badge(page, "FAILED_CANCELED").waitFor({ timeout: 30_000 });
    expect(await statusOf(third)).toBe("FAILED_CANCELED");
    await page.close();
  }, 180_000);

  /** Presses Tab until `target` has the focus (at most `limit` times): it is reachable by keyboard, in order. */
  async function tabTo(page: Page, target: ReturnType<Page["locator"]>, limit = 60): Promise<void> {
    for (let i = 0; i < limit; i += 1) {
      if (
        await target.evaluate(
          (element) => element === (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement,
        )
      )
        return;
      await page.keyboard.press("Tab");
    }
    throw new Error(`not reached by ${limit} presses of Tab`);
  }

  it("cancels the workflows selected in the list, by keyboard", async () => {
    const ids = [await submit(ticker), await submit(ticker)];
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${server.url}/workflows`);
    await signIn(page, token);
    for (const id of ids) {
      const row = page.locator(`tr[data-workflow="${id}"]`);
      await expect.poll(() => row.locator(".badge").textContent(), { timeout: 15_000 }).toBe("RUNNING");
      // Tab to its checkbox, Space selects it.
      const checkbox = row.getByRole("checkbox", { name: `Select ${id}` });
      await tabTo(page, checkbox);
      await page.keyboard.press("Space");
      expect(await checkbox.isChecked()).toBe(true);
    }
    const cancel = page.getByRole("button", { name: "Cancel selected (2)" });
    await tabTo(page, cancel);
    await page.keyboard.press("Enter");
    await page.getByRole("status").filter({ hasText: "Cancel asked of 2 workflows." }).waitFor();
    for (const id of ids) {
      const row = page.locator(`tr[data-workflow="${id}"]`);
      await expect.poll(() => row.locator(".badge").textContent(), { timeout: 30_000 }).toBe("FAILED_CANCELED");
      // Ended: nothing left to select.
      expect(await row.getByRole("checkbox").count()).toBe(0);
      expect(await statusOf(id)).toBe("FAILED_CANCELED");
    }
    expect(await page.getByRole("button", { name: "Cancel selected (0)" }).isDisabled()).toBe(true);
    await expectAccessible(page);
    await screenshot(page, "workflows-canceled");
    // A workflow's link, reached by Tab from the page's start, opens its page with Enter.
    await page.locator("body").focus();
    const link = page.locator(`tr[data-workflow="${ids[0]}"]`).getByRole("link", { name: ids[0] });
    await tabTo(page, link);
    await page.keyboard.press("Enter");
    await page.waitForURL((address) => address.pathname.endsWith(`/workflows/${ids[0]}`));
    await page.close();
  }, 90_000);

  it("keeps the list up to date by push: a new workflow shows at once, and nothing is read while nothing changes; resubmits one", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const reads: number[] = [];
    page.on("request", (request) => new URL(request.url()).pathname === "/api/workflow" && reads.push(Date.now()));
    await page.goto(`${server.url}/workflows`);
    await signIn(page, token);
    await expect.poll(() => reads.length, { timeout: 15_000 }).toBeGreaterThan(0);
    // Quiet (every earlier workflow has ended, none is submitted): over 5 s the list is not read again (a page that
    // polled would read it every 2 s).
    await expect.poll(() => statusesQuiet(), { timeout: 60_000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = reads.length;
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(reads.length - before).toBe(0);
    // A workflow submitted elsewhere is in the list as soon as the server says so.
    const id = await submit(ticker);
    const row = page.locator(`tr[data-workflow="${id}"]`);
    await row.waitFor({ timeout: 5_000 });
    await expect.poll(() => row.locator(".badge").textContent(), { timeout: 15_000 }).toBe("RUNNING");
    await fetch(`${server.url}/api/workflow/${id}/cancel`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    await expect.poll(() => row.locator(".badge").textContent(), { timeout: 30_000 }).toBe("FAILED_CANCELED");
    // Resubmit (OSMO's `workflow submit ID`): its spec again, as a new workflow, whose page opens.
    await row.getByRole("link", { name: id }).click();
    await page.waitForURL(new RegExp(`/workflows/${id}$`));
    await page.getByRole("button", { name: "Resubmit" }).click();
    await page.waitForURL((address) => /\/workflows\/[^/]+$/.test(address.pathname) && !address.pathname.endsWith(`/${id}`));
    const again = decodeURIComponent(new URL(page.url()).pathname.split("/").pop()!);
    expect(again).not.toBe(id);
    const [name] = id.split(/-\d+$/);
    expect(again.startsWith(`${name}-`)).toBe(true);
    await expect.poll(() => statusOf(again), { timeout: 15_000 }).toBe("RUNNING");
    await fetch(`${server.url}/api/workflow/${again}/cancel`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
    await expect.poll(() => statusOf(again), { timeout: 30_000 }).toBe("FAILED_CANCELED");
    await page.close();
  }, 120_000);

  it("says when the server cannot be reached after the page loaded, and tries again when asked", async () => {
    const page = await browser.newPage();
    // A network that fails between the page's load and its first call cannot be timed for real: Playwright fails
    // the session's calls (the only stand-in in these tests) until the server is "back".
    let unreachable = true;
    await page.route("**/api/session", (route) => (unreachable ? route.abort("connectionrefused") : route.continue()));
    await page.goto(`${server.url}/login`);
    await page.evaluate((t) => (globalThis as unknown as InPage).sessionStorage.setItem("troupe.token", t), token);
    await page.goto(`${server.url}/workflows`);
    await page.getByRole("alert").filter({ hasText: "Could not reach the server" }).waitFor();
    unreachable = false;
    await page.getByRole("button", { name: "Try again" }).click();
    await page.getByRole("heading", { name: "Workflows" }).waitFor();
    await page.close();
  }, 60_000);

  it("keeps a refused token out: the login page says so (signing in by keyboard), and a 401 later sends the user back to it", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/login`);
    // By keyboard: the token field comes first, Enter signs in.
    await page.getByLabel("API token").waitFor();
    await page.keyboard.press("Tab");
    await page.keyboard.type("trp_not-a-token");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("does not accept this token");
    expect(new URL(page.url()).pathname).toBe("/login");
    expect(await page.evaluate(() => (globalThis as unknown as InPage).sessionStorage.getItem("troupe.token"))).toBeNull();

    // A token that stops being accepted (here: one never valid, put in the tab's session as a stale one would be).
    await page.evaluate(() => (globalThis as unknown as InPage).sessionStorage.setItem("troupe.token", "trp_revoked"));
    await page.goto(`${server.url}/workflows`);
    await page.waitForURL(/\/login\?next=%2Fworkflows&expired=1$/);
    await page.getByText("The token was not accepted: sign in again.").waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as InPage).sessionStorage.getItem("troupe.token"))).toBeNull();
    await signIn(page, token);
    await page.waitForURL(/\/workflows$/);
    await page.close();
  }, 60_000);
});
