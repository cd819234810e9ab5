/**
 * The submit page in a real browser (Debian's Chromium) against a real `troupe server` (host runtime): a spec
 * with a mistake typed into the editor, a dry run, the server's diagnostic shown at its line in the editor and
 * in the list; fixed, a dry run draws the plan as a graph; submitted with a --set variable, the page goes to the
 * new workflow, which completes with the variable's value in its output.
 */
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

const name = `ui-submit-${random()}`;
/** Line 12 has the mistake: `imagee`. */
const withMistake = `workflow:
  name: ${name}
  groups:
  - name: make
    tasks:
    - name: maker
      image: alpine:3.18
      command: ["sh", "-c", "echo hello {{ who }} > {{output}}/greeting"]
  - name: use
    tasks:
    - name: user
      imagee: alpine:3.18
      command: ["sh", "-c", "cat {{input:0}}/greeting"]
      inputs:
      - task: maker
`;

describe.skipIf(!haveChromium())("the submit page, in Chromium", () => {
  it("shows the server's diagnostic at its line, draws a dry run's plan, and submits with variables", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${server.url}/login`);
    await page.evaluate(
      (t) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem("troupe.token", t),
      token,
    );
    await page.goto(`${server.url}/workflows`);
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Submit" }).click();
    await page.waitForURL(/\/submit$/);

    const editor = page.getByRole("textbox", { name: "Workflow spec (YAML)" });
    await editor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(withMistake);
    await page.getByLabel("Variables (--set), one NAME=VALUE a line").fill("who=troupe");
    await page.getByRole("button", { name: "Dry run" }).click();

    // The mistake, at its lines (the task lacks `image`, has `imagee`): in the list, marked in the editor and its gutter.
    const problems = page.getByRole("list", { name: "Problems" }).locator("li");
    await problems.first().waitFor();
    expect(await problems.evaluateAll((items) => items.map((li) => li.getAttribute("data-line")))).toEqual(["11", "12"]);
    expect(await problems.nth(0).textContent()).toMatch(/error at line 11: .*required field `image` is missing/);
    expect(await problems.nth(1).textContent()).toMatch(/error at line 12: .*unknown field `imagee`.*did you mean `image`/);
    expect(await page.getByRole("alert").textContent()).toContain("not valid");
    const line12 = page.locator(".cm-content .cm-line").nth(11);
    expect(await line12.textContent()).toContain("imagee");
    expect(await line12.locator(".cm-lintRange-error").count()).toBe(1);
    expect(await page.locator(".cm-gutter-lint .cm-lint-marker-error").count()).toBe(2);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "submit-diagnostic");

    // Fixed in the editor: a dry run is valid and draws the plan, the input as an edge.
    await line12.click();
    // Home goes to the line's text (after its indentation): the second "e" of imagee is 5 to the right.
    await page.keyboard.press("End");
    await page.keyboard.press("Home");
    for (let i = 0; i < 5; i++) await page.keyboard.press("ArrowRight");
    await page.keyboard.press("Delete");
    expect(await line12.textContent()).toBe("      image: alpine:3.18");
    await page.getByRole("button", { name: "Dry run" }).click();
    await page.getByRole("status").filter({ hasText: "Valid" }).waitFor();
    expect(await page.getByRole("status").textContent()).toContain(`${name}, 2 groups, 2 tasks`);
    expect(await page.locator(".diagnostics").count()).toBe(0);
    await page.locator('.react-flow__node [data-group="make"]').waitFor();
    await page.locator('.react-flow__node [data-group="use"]').waitFor();
    expect(await page.locator(".react-flow__edge").count()).toBe(1);
    expect(await seriousViolations(page)).toEqual([]);
    await screenshot(page, "submit-dry-run");

    // Submitted: the page goes to the new workflow, which ran with the variable.
    await page.getByRole("button", { name: "Submit", exact: true }).click();
    await page.waitForURL(/\/workflows\/ui-submit-[^/]+$/);
    await page.locator(".title .badge", { hasText: /^COMPLETED$/ }).waitFor({ timeout: 30_000 });
    const id = new URL(page.url()).pathname.split("/").pop()!;
    const log = await fetch(`${server.url}/api/workflow/${id}/logs?task=user`, { headers: { authorization: `Bearer ${token}` } });
    expect(await log.text()).toContain("hello troupe");
    await page.close();
  }, 90_000);

  it("refuses variables that are not NAME=VALUE, saying which line", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/login`);
    await page.evaluate(
      (t) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem("troupe.token", t),
      token,
    );
    await page.goto(`${server.url}/submit`);
    await page.getByLabel("Variables (--set), one NAME=VALUE a line").fill("who=me\n\nnot a variable");
    await page.getByRole("button", { name: "Dry run" }).click();
    expect(await page.getByRole("alert").textContent()).toBe('variables, line 3: "not a variable" is not NAME=VALUE');
    await page.close();
  }, 30_000);
  it("completes keys from the workflow's JSON Schema where they are valid: a task's under a group's task", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/login`);
    await page.evaluate(
      (t) =>
        (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem("troupe.token", t),
      token,
    );
    await page.goto(`${server.url}/submit`);
    const editor = page.getByRole("textbox", { name: "Workflow spec (YAML)" });
    await editor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText("workflow:\n  name: typed\n  groups:\n  - name: g\n    tasks:\n    - name: t\n      ");
    await page.keyboard.type("ima");
    const offered = page.getByRole("listbox");
    await offered.waitFor();
    expect(await offered.getByRole("option").allTextContents()).toEqual(["image"]);
    await page.keyboard.press("Enter");
    await page.keyboard.type("alpine:3.18");
    await page.keyboard.press("Enter");
    // Asked for with Ctrl-Space where a key goes: the task's other keys, not those it has, nor a group's own.
    await page.keyboard.press("Control+Space");
    await offered.waitFor();
    const keys = await offered.getByRole("option").allTextContents();
    expect(keys).toEqual(expect.arrayContaining(["command", "args", "inputs", "outputs", "lead"]));
    expect(keys).not.toContain("image");
    expect(keys).not.toContain("name");
    expect(keys).not.toContain("tasks");
    await screenshot(page, "submit-completion");
    await page.keyboard.type("comm");
    await page.keyboard.press("Enter");
    // Lines as drawn (a trailing space may or may not be drawn as its own text: left out).
    const text = (await page.locator(".cm-content .cm-line").allTextContents()).map((line) => line.trimEnd()).join("\n");
    expect(text).toBe(
      "workflow:\n  name: typed\n  groups:\n  - name: g\n    tasks:\n    - name: t\n      image: alpine:3.18\n      command:",
    );
    // Checked with the list closed: axe counts CodeMirror's open list (a scrolling listbox the editor drives
    // through aria-activedescendant, so the keyboard reaches it from the editor) as a region it cannot focus.
    await offered.waitFor({ state: "detached" });
    expect(await seriousViolations(page)).toEqual([]);
    await page.close();
  }, 30_000);
});
