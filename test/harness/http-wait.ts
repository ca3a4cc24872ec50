// Polls an HTTP(S) endpoint until it answers 200, for process readiness checks.
import { request as httpsRequest, type RequestOptions } from "node:https";
import { request as httpRequest } from "node:http";
import { setTimeout as delay } from "node:timers/promises";

export async function httpStatus(url: string, options: RequestOptions = {}): Promise<number> {
  const request = url.startsWith("https:") ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(url, { ...options, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => {
      resolve(0);
    });
    req.end();
  });
}

/** Polls until `url` answers 200; polling (not a fixed sleep) bounded by `timeoutMs`. */
export async function waitForHttpOk(
  url: string,
  timeoutMs: number,
  options: RequestOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = await httpStatus(url, options);
    if (last === 200) {
      return;
    }
    await delay(100);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last status ${last})`);
}
