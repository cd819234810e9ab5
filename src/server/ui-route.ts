/**
 * The web UI at `/`: the static files `npm run build` makes in dist/ui/
 * (Vite), and index.html for each of the UI's own routes (/workflows/ID, ...),
 * which the page's router then reads. These are public, as /api/health is:
 * the page holds nothing; its data comes through the API, with the token the
 * user gives on the login page. Only the paths named here are the UI's: /api
 * is never shadowed, and any other path is still the API's 404.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";
import { NotFoundError } from "../errors/index.js";

export interface UiOptions {
  /** The built UI (index.html and assets/); default dist/ui beside this module's folder. */
  dir?: string;
  /** The API refuses submissions and restarts (`troupe ui`, local history): the page hides what cannot work. */
  readOnly?: boolean;
}

/** The UI's own routes (ui/src/router.ts), answered with index.html. */
export const UI_ROUTES = ["/login", "/workflows", "/workflows/*", "/pools", "/submit"];

/**
 * What a page of the UI may do in the browser: load its own files, talk to this server, nothing else (no
 * inline script; inline styles, which the graph library sets on its elements). No framing by other sites.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "worker-src 'self' blob:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

/** dist/ui, from dist/server/ (the HTTP thread) or dist/bundle/ (the bundled CLI): both are beside it. */
export function defaultUiDir(): string {
  return fileURLToPath(new URL("../ui/", import.meta.url));
}

/** The pages' routes are not the API's: left out of its OpenAPI document (as @fastify/static leaves its files). */
const notApi = { schema: { hide: true } };

export async function registerUi(app: FastifyInstance, options: UiOptions): Promise<void> {
  const dir = options.dir ?? defaultUiDir();
  // Who the token is and what this server lets the page do: the login page's check, and the page's choices.
  app.get("/api/session", { schema: { hide: true } }, async (request) => ({
    user: request.owner!.name,
    admin: request.owner!.admin,
    read_only: options.readOnly === true,
  }));
  await app.register(async (ui) => {
    ui.addHook("onRoute", (route) => {
      route.config = { ...(route.config as object), public: true } as typeof route.config;
    });
    ui.addHook("onSend", async (_request, reply: FastifyReply, payload) => {
      reply.header("content-security-policy", CONTENT_SECURITY_POLICY);
      reply.header("x-content-type-options", "nosniff");
      reply.header("referrer-policy", "no-referrer");
      return payload;
    });
    if (!existsSync(`${dir}/index.html`)) {
      const notBuilt = async () => {
        throw new NotFoundError("E_NO_UI", `the web UI is not built here (no ${dir}/index.html): \`npm run build\` makes it`);
      };
      for (const path of ["/", ...UI_ROUTES]) ui.get(path, notApi, notBuilt);
      return;
    }
    await ui.register(fastifyStatic, {
      root: dir,
      prefix: "/",
      // One route per file found now (no catch-all): every other path stays the API's.
      wildcard: false,
      cacheControl: false,
      setHeaders: (response, path) =>
        // Vite names assets by their content hash: they never change. index.html does, with each build.
        response.setHeader("cache-control", path.includes("/assets/") ? "public, max-age=31536000, immutable" : "no-cache"),
    });
    for (const path of UI_ROUTES) ui.get(path, notApi, (_request, reply) => reply.sendFile("index.html"));
  });
}
