import { readFileSync } from "node:fs";
import type { LeaderEvent } from "../core/leader-event-log.js";
import type { HttpReply } from "./http-router.js";

/*
 * What the coordinator's and the agents' web views share (docs/web-view.md):
 * serving their hand-written files and writing server-sent events.
 */

/**
 * A static asset of a web view, read once from beside its module: hand-written
 * HTML, CSS and JavaScript with nothing fetched from elsewhere, so a page
 * works offline and its size is the size of these files.
 */
export interface StaticAsset {
  readonly path: string;
  readonly bytes: number;
  reply(): HttpReply;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

/**
 * Only our own assets and our own origin: no inline script, nothing from a
 * CDN, and no framing (the admin buttons must not be clickjacked).
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

export function staticAsset(base: URL, file: string, path: string): StaticAsset {
  const text = readFileSync(new URL(file, base), "utf8");
  const ext = file.slice(file.lastIndexOf(".") + 1);
  const contentType = TYPES[ext] ?? "application/octet-stream";
  return { path, bytes: Buffer.byteLength(text), reply: () => ({ text, contentType, headers: { ...PAGE_HEADERS } }) };
}

/** One server-sent event: a name and one JSON line (JSON never contains a raw newline). */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export const SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8";

/** A leader event as the web views' streams send it (the /v1/health/leader field names). */
export function leaderEventJson(e: LeaderEvent) {
  return {
    revision: e.revision,
    kind: e.kind,
    message: e.message,
    at: e.at.toISOString(),
    leader: {
      holder_id: e.leader.holderId,
      epoch: e.leader.epoch,
      acquired_at: e.leader.acquiredAt?.toISOString() ?? null,
      write_ready: e.leader.writeReady,
    },
  };
}
