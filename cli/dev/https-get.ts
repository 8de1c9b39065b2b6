import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/**
 * GET a JSON path over http:// or https:// (trusting `ca`), for health checks
 * against our own ports; fetch() cannot be given a CA.
 */
export function getJson(
  url: string,
  options: { ca?: Buffer; cert?: Buffer; key?: Buffer; timeoutMs?: number } = {},
): Promise<{ status: number; body: unknown }> {
  const u = new URL(url);
  const request = u.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, { method: "GET", ca: options.ca, cert: options.cert, key: options.key, timeout: options.timeoutMs ?? 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url} within ${options.timeoutMs ?? 5_000}ms`)));
    req.on("error", reject);
    req.end();
  });
}
