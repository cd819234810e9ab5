/**
 * The client side of the server: where the server is and the token
 * (`troupe login`, a config file; TROUPE_SERVER / TROUPE_TOKEN override),
 * and one JSON call to it with errors turned into troupe errors.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { NotFoundError, TroupeError, UsageError } from "../errors/index.js";
import { trustExtraCaCerts } from "../util/extra-ca.js";
import { log } from "../util/log.js";

/** What the server answers a request it refused or failed with. */
interface ErrorBody {
  error?: string;
  code?: string;
}

export interface ClientConfig {
  server: string;
  token: string;
}

/**
 * Where `troupe login` keeps the server and token: in troupe's home when TROUPE_HOME says where
 * that is (one variable keeps all of troupe's state apart, as tests and second setups need), else
 * in the XDG config directory ($XDG_CONFIG_HOME, default ~/.config).
 */
export function configPath(): string {
  if (process.env.TROUPE_HOME) return join(resolve(process.env.TROUPE_HOME), "client.json");
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "troupe", "client.json");
}

export function saveConfig(config: ClientConfig): void {
  const path = configPath();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function loadConfig(): ClientConfig {
  let saved: Partial<ClientConfig> = {};
  try {
    saved = JSON.parse(readFileSync(configPath(), "utf8")) as Partial<ClientConfig>;
  } catch (error) {
    // No `troupe login` yet is the usual; an unreadable file is as none (TROUPE_SERVER, or login again, says where).
    if ((error as NodeJS.ErrnoException).code !== "ENOENT")
      log.debug({ err: error, file: configPath() }, "the client's config is unreadable");
    saved = {};
  }
  const server = process.env.TROUPE_SERVER || saved.server;
  const token = process.env.TROUPE_TOKEN || saved.token;
  if (!server || !token)
    throw new UsageError("no server to talk to", "run `troupe login URL --token TOKEN`, or set TROUPE_SERVER and TROUPE_TOKEN");
  return { server: server.replace(/\/+$/, ""), token };
}

/**
 * The server the CLI is pointed at, if any: TROUPE_SERVER, or a `troupe login` saved (then the token must be
 * there too, as loadConfig says). Undefined when neither is: commands that also work locally work locally.
 */
export function pointedServer(): ClientConfig | undefined {
  if (process.env.TROUPE_SERVER) return loadConfig();
  try {
    readFileSync(configPath());
  } catch (error) {
    // No `troupe login`: no server. A config that cannot be read is loadConfig's to report.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
  }
  return loadConfig();
}

/** A streamed GET (logs): the response, after the same error handling as `call`. */
export async function stream(path: string, config = loadConfig()): Promise<Response> {
  let response: Response;
  trustExtraCaCerts();
  try {
    response = await fetch(config.server + path, { headers: { authorization: `Bearer ${config.token}` } });
  } catch (error) {
    throw new TroupeError(
      "E_SERVER_UNREACHABLE",
      `cannot reach ${config.server}: ${(error as Error).cause ?? (error as Error).message}`,
      "system",
    );
  }
  if (response.status >= 400) {
    let body: ErrorBody = {};
    try {
      body = (await response.json()) as ErrorBody;
    } catch {
      // Not JSON.
    }
    const message = body.error ?? `HTTP ${response.status}`;
    if (response.status === 404) throw new NotFoundError(body.code ?? "E_NOT_FOUND", message);
    throw new TroupeError(
      body.code ?? (response.status === 401 ? "E_UNAUTHORIZED" : "E_REQUEST"),
      message,
      response.status >= 500 ? "system" : "usage",
    );
  }
  return response;
}

/** One API call; the server's `{error}` becomes the message of a TroupeError of the matching kind. */
export async function call<T>(method: string, path: string, body?: unknown, config = loadConfig()): Promise<{ status: number; body: T }> {
  let response: Response;
  trustExtraCaCerts();
  try {
    response = await fetch(config.server + path, {
      method,
      headers: { authorization: `Bearer ${config.token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new TroupeError(
      "E_SERVER_UNREACHABLE",
      `cannot reach ${config.server}: ${(error as Error).cause ?? (error as Error).message}`,
      "system",
    );
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Plain text (the spec route).
  }
  if (response.status >= 400) {
    // The server's error says what was wrong and its stable code (server/error-reply.ts).
    const { error, code } = (typeof parsed === "object" && parsed !== null ? parsed : {}) as ErrorBody;
    const message = error ?? `HTTP ${response.status}`;
    if (response.status === 404) throw new NotFoundError(code ?? "E_NOT_FOUND", message);
    if (response.status === 401) throw new TroupeError(code ?? "E_UNAUTHORIZED", message, "usage", "check the token (`troupe login`)");
    if (response.status === 403) throw new TroupeError(code ?? "E_FORBIDDEN", message, "usage");
    if (response.status >= 500) throw new TroupeError(code ?? "E_SERVER", `the server failed: ${message}`, "system");
    return { status: response.status, body: parsed as T };
  }
  return { status: response.status, body: parsed as T };
}
