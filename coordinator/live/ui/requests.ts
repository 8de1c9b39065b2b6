import { ErrorCode, HaError, invalidArgument } from "../../../core/errors.js";
import type { HttpRequest } from "../../../rpc/http-router.js";

/**
 * An action from the web view must be a JSON POST from the page's own origin.
 * A browser sends a cross-site form (text/plain) without asking first, and
 * with the user's client certificate; requiring application/json makes it ask
 * (CORS preflight, which we never grant), and a foreign Origin is refused outright.
 */
export function requireSameOriginJson(req: HttpRequest): Record<string, unknown> {
  const type = String(req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") throw invalidArgument(`content-type must be application/json, not ${JSON.stringify(type || "none")}`);
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== "null") {
    let host = "";
    try {
      host = new URL(origin).host;
    } catch {
      // an unparseable origin is a foreign one
    }
    if (host === "" || host !== req.headers.host) {
      throw new HaError(ErrorCode.PermissionDenied, `cross-origin request from ${origin.slice(0, 100)} refused; use the page served by this port`);
    }
  } else if (origin === "null") {
    throw new HaError(ErrorCode.PermissionDenied, "request from an opaque origin refused; use the page served by this port");
  }
  if (typeof req.body !== "object" || req.body === null || Array.isArray(req.body)) throw invalidArgument("request body must be a JSON object");
  return req.body as Record<string, unknown>;
}

export function textField(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw invalidArgument(`${name} must be a string`);
  return v;
}

export function boolField(body: Record<string, unknown>, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") throw invalidArgument(`${name} must be true or false`);
  return v;
}
