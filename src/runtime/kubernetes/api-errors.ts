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
