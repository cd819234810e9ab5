/**
 * `troupe ui`: the local history of a TROUPE_HOME (runs of `troupe run`) in
 * a real browser, served on 127.0.0.1 with a token made for the process and
 * printed in the URL's fragment. Without that token the API answers nothing;
 * submitting is refused with the reason; a cancel reaches the `troupe run`
 * driving the run, which stops it.
 */
import { connect } from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ROOT, TestHome, ensureBuilt, random, troupe } from "../run/helpers.js";
import { haveChromium, launchBrowser, screenshot, seriousViolations } from "./browser.js";

let home: TestHome;
let ui: ChildProcess;
let url: URL;
let token: string;
let browser: Browser | undefined;
let done: string;

beforeAll(async () => {
  await ensureBuilt();
  home = new TestHome();
  const spec = home.spec(
    "hello",
    `workflow:\n  name: local-hello-${random()}\n  tasks:\n  - name: hello\n    image: alpine:3.18\n    command: ["sh", "-c", "echo hello from a local run"]\n`,
  );
  const ran = await troupe(["run", spec, "--isolation", "none", "--output", "json"], { home: home.home });
  expect(ran.code, ran.stderr).toBe(0);
  done = (JSON.parse(ran.stdout) as { id: string }).id;

  ui = spawn(process.execPath, [BIN, "ui", "--home", home.home, "--port", "0"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const printed = await new Promise<string>((resolve, reject) => {
    ui.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /^troupe ui: open (\S+)$/m.exec(out);
      if (match) resolve(match[1]!);
    });
    ui.on("exit", (code) => reject(new Error(`troupe ui exited (${code}): ${out}`)));
  });
  url = new URL(printed);
  token = /^#token=([A-Za-z0-9_-]{43})$/.exec(url.hash)![1]!;
}, 240_000);

/** SIGTERM (or Ctrl-C): troupe ui closes and exits 0; the exit code, or null if it had exited already. */
async function stopUi(): Promise<number | null> {
  if (!ui || ui.exitCode !== null) return null;
  const exited = new Promise<number | null>((resolve) => ui.once("exit", (code) => resolve(code)));
  ui.kill("SIGTERM");
  return exited;
}

afterAll(async () => {
  await browser?.close();
  await stopUi();
  home?.remove();
});

const api = (path: string, init: RequestInit = {}, withToken = true) =>
  fetch(`${url.origin}${path}`, {
    ...init,
    headers: { ...(withToken ? { authorization: `Bearer ${token}` } : {}), ...(init.body ? { "content-type": "application/json" } : {}) },
  });

describe("troupe ui", () => {
  it("listens on loopback only and answers nothing without its token", async () => {
    expect(url.hostname).toBe("127.0.0.1");
    expect((await api("/api/workflow?all_users=true", {}, false)).status).toBe(401);
    const guessed = await fetch(`${url.origin}/api/workflow?all_users=true`, { headers: { authorization: `Bearer ${"x".repeat(43)}` } });
    expect(guessed.status).toBe(401);
    const listed = (await (await api("/api/workflow?all_users=true")).json()) as { workflows: { id: string }[] };
    expect(listed.workflows.map((w) => w.id)).toContain(done);
    expect(await (await api("/api/session")).json()).toEqual({ user: "local", admin: true, read_only: true });
  });

  it("says what is wrong with its flags, and a port it cannot take (exit 2)", async () => {
    const badPort = await troupe(["ui", "--port", "eighty"], { home: home.home });
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toContain("--port");
    const taken = await troupe(["ui", "--port", url.port], { home: home.home });
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain(`cannot serve on 127.0.0.1:${url.port}`);
    expect(taken.stderr).toContain("address already in use");
  });

  it("refuses to submit, saying why", async () => {
    const response = await api("/api/pool/default/workflow", { method: "POST", body: JSON.stringify({ spec: "workflow: {}" }) });
    expect(response.status).toBe(403);
    const body = (await response.json()) as { code: string; error: string };
    expect(body.code).toBe("E_READ_ONLY");
    expect(body.error).toContain("troupe ui shows local history");
  });

  it("cancels a local run through the `troupe run` driving it", async () => {
    const spec = home.spec(
      "sleepy",
      `workflow:\n  name: local-sleepy-${random()}\n  tasks:\n  - name: sleeper\n    image: alpine:3.18\n    command: ["sh", "-c", "echo waiting; sleep 60"]\n`,
    );
    const running = troupe(["run", spec, "--isolation", "none", "--output", "json"], { home: home.home, timeoutMs: 60_000 });
    let runId: string | undefined;
    for (let i = 0; i < 200 && runId === undefined; i++) {
      const body = (await (await api("/api/workflow?all_users=true&status=RUNNING")).json()) as { workflows: { id: string }[] };
      runId = body.workflows[0]?.id;
      if (runId === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(runId, "the local run never showed as RUNNING").toBeDefined();
    const canceled = await api(`/api/workflow/${runId}/cancel`, { method: "POST", body: JSON.stringify({ message: "enough" }) });
    expect(canceled.status).toBe(202);
    const result = await running;
    expect(result.timedOut).toBe(false);
    const record = JSON.parse(result.stdout) as { status: string };
    expect(record.status).toBe("FAILED_CANCELED");
  }, 90_000);

  it.skipIf(!haveChromium())(
    "opens on the printed URL, keeps the token out of the address bar, and shows the local runs",
    async () => {
      browser = await launchBrowser();
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(url.href);
      await page.locator(`tr[data-workflow="${done}"]`).waitFor();
      expect(page.url()).toBe(`${url.origin}/`);
      expect(await page.getByText("local history").count()).toBe(1);
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, "local-workflows");
      await page.getByRole("link", { name: done }).click();
      await page.locator(".title .badge", { hasText: /^COMPLETED$/ }).waitFor();
      // Nothing to restart or cancel in a completed local run.
      expect(await page.getByRole("button").count()).toBe(0);
      await screenshot(page, "local-workflow");
    },
    60_000,
  );

  it("stops on SIGTERM with exit code 0, however many connections pages left open", async () => {
    // A request whose headers never end holds its connection open as a page's live stream does.
    const held = connect(Number(url.port), "127.0.0.1");
    await new Promise<void>((resolve) => held.once("connect", resolve));
    held.write("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    held.on("error", () => undefined);
    const started = Date.now();
    expect(await stopUi()).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    held.destroy();
  });
});
