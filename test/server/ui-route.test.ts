/**
 * The web UI's files as the API's app serves them, over real HTTP on loopback
 * with a real store: the UI's routes answered with index.html without a token
 * (the page holds no data), assets cached for good, the API never shadowed
 * (its paths still need the token and answer JSON), the page's security
 * headers, GET /api/session for the login page, and a clear error where the
 * UI was not built.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/server/index.js";
import type { RunControl } from "../../src/server/run-manager.js";
import { RunStore } from "../../src/store/index.js";

let dir: string;
let store: RunStore;
let token: string;
const apps: FastifyInstance[] = [];

/** These tests submit, restart and cancel nothing: a run manager that says so if it is ever asked. */
const noRuns: RunControl = {
  submit: () => Promise.reject(new Error("not in these tests")),
  restart: () => Promise.reject(new Error("not in these tests")),
  cancel: () => false,
};

async function serve(uiDir: string): Promise<string> {
  const app = await buildApp({ store, manager: noRuns, ui: { dir: uiDir } });
  apps.push(app);
  return app.listen({ host: "127.0.0.1", port: 0 });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "troupe-ui-route-"));
  mkdirSync(join(dir, "ui", "assets"), { recursive: true });
  writeFileSync(join(dir, "ui", "index.html"), "<!doctype html><title>troupe</title><div id=root></div>");
  writeFileSync(join(dir, "ui", "assets", "index-abc123.js"), "console.log('ui')");
  mkdirSync(join(dir, "not-built"));
  store = RunStore.open(join(dir, "home"));
  token = store.tokens.create("alice", false);
});

afterAll(async () => {
  for (const app of apps) await app.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the web UI's files", () => {
  it("answers the UI's routes with index.html, without a token, with its security headers", async () => {
    const url = await serve(join(dir, "ui"));
    for (const path of ["/", "/login?next=%2Fworkflows", "/workflows", "/workflows/train-3", "/workflows/train-3/logs?task=a"]) {
      const response = await fetch(url + path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type"), path).toMatch(/^text\/html/);
      expect(await response.text(), path).toContain("<div id=root>");
      expect(response.headers.get("cache-control"), path).toBe("no-cache");
      expect(response.headers.get("content-security-policy"), path).toContain("default-src 'self'");
      expect(response.headers.get("content-security-policy"), path).toContain("frame-ancestors 'none'");
      expect(response.headers.get("x-content-type-options"), path).toBe("nosniff");
    }
    const asset = await fetch(`${url}/assets/index-abc123.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toMatch(/javascript/);
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
  });

  it("never shadows the API, nor answers paths that are not the UI's", async () => {
    const url = await serve(join(dir, "ui"));
    const list = await fetch(`${url}/api/workflow`);
    expect(list.status).toBe(401);
    expect(((await list.json()) as { code: string }).code).toBe("E_UNAUTHORIZED");
    const unknown = await fetch(`${url}/api/nothing-here`, { headers: { authorization: `Bearer ${token}` } });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe("E_NO_ROUTE");
    for (const path of ["/elsewhere", "/assets/missing.js", "/workflowsX"]) {
      const response = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
      expect(response.status, path).toBe(404);
      expect(response.headers.get("content-type"), path).toMatch(/^application\/json/);
    }
    // The API's own answers carry no page headers.
    expect(list.headers.get("content-security-policy")).toBeNull();
    // Nor is the UI in the API's document.
    const doc = (await (await fetch(`${url}/api/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).filter((path) => !path.startsWith("/api/"))).toEqual([]);
    expect(Object.keys(doc.paths)).not.toContain("/api/session");
  });

  it("tells the login page who a token is, and refuses one it does not know", async () => {
    const url = await serve(join(dir, "ui"));
    const session = await fetch(`${url}/api/session`, { headers: { authorization: `Bearer ${token}` } });
    expect(session.status).toBe(200);
    expect(await session.json()).toEqual({ user: "alice", admin: false, read_only: false });
    const refused = await fetch(`${url}/api/session`, { headers: { authorization: "Bearer trp_nobody" } });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toBe("the token is not valid");
  });

  it("says where the UI was not built, naming the missing file and the fix", async () => {
    const url = await serve(join(dir, "not-built"));
    const response = await fetch(`${url}/workflows`);
    expect(response.status).toBe(404);
    const body = (await response.json()) as { code: string; error: string };
    expect(body.code).toBe("E_NO_UI");
    expect(body.error).toContain(join(dir, "not-built", "index.html"));
    expect(body.error).toContain("npm run build");
  });
});
