/** What the API server's refusals say (@kubernetes/client-node's ApiException: the HTTP status as `code`, the Status as `body`). */

export function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

export function isStatus(error: unknown, status: number): boolean {
  return statusOf(error) === status;
}

/** The Status object's message where there is one (the body is JSON text), with the HTTP status. */
export function apiMessage(error: unknown): string {
  const status = statusOf(error);
  const body = (error as { body?: unknown })?.body;
  let message: string | undefined;
  if (typeof body === "string") {
    try {
      message = (JSON.parse(body) as { message?: string }).message;
    } catch {
      message = body.slice(0, 300);
    }
  } else if (body && typeof body === "object") message = (body as { message?: string }).message;
  message ??= error instanceof Error ? error.message : String(error);
  return status === undefined ? message : `${status}: ${message}`;
}

/** Answers worth asking again: the API server's flow control (429) and its or a proxy's passing failures. */
const PASSING = new Set([429, 500, 502, 503, 504]);
const RETRY_LIMIT_MS = 5_000;

/** The pause a refusal asks for (Retry-After, in seconds), if it says. */
function retryAfterMs(error: unknown): number | undefined {
  const headers = (error as { headers?: Record<string, string> })?.headers;
  const value = headers?.["retry-after"] ?? headers?.["Retry-After"];
  const seconds = value === undefined ? NaN : Number(value);
  return Number.isFinite(seconds) ? Math.min(seconds * 1000, RETRY_LIMIT_MS) : undefined;
}

/**
 * `call`, asked again while the API server answers 429 or 5xx (its Retry-After heeded, else a doubling pause
 * from 200 ms), at most `attempts` times in all; any other answer, or the last, is the caller's.
 */
export async function retrying<T>(call: () => Promise<T>, attempts = 6): Promise<T> {
  let pause = 200;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const status = statusOf(error);
      if (attempt >= attempts || status === undefined || !PASSING.has(status)) throw error;
      await new Promise((resolve) => setTimeout(resolve, retryAfterMs(error) ?? pause));
      pause = Math.min(pause * 2, RETRY_LIMIT_MS);
    }
  }
}
