/**
 * The two ways verify talks to a server: an HTTP(S) request with a bounded time and an extra
 * trusted CA, and a bare TLS handshake that reports the certificate instead of refusing it.
 */
import * as http from "node:http";
import * as https from "node:https";
import { isIP } from "node:net";
import * as tls from "node:tls";

const REQUEST_TIMEOUT_MS = 10_000;
/** Answers are nix-cache-info, JSON or a placeholder page: more than this is not atticd's. */
const MAX_BODY = 65_536;

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
  /** When the answer arrived (epoch ms), to compare with its Date header. */
  at: number;
}

export interface RequestOptions {
  method?: string;
  /** Sent as `Authorization: Bearer`, as the attic client does. */
  token?: string;
  body?: unknown;
  /** Trusted CAs (PEM); Node's roots when unset. */
  ca?: string[];
  /** false: accept any certificate (to tell "down" from "bad certificate"). Default true. */
  verifyTls?: boolean;
}

export function request(url: string, opts: RequestOptions = {}): Promise<Answer> {
  const u = new URL(url);
  const headers: Record<string, string> = { accept: "application/json, text/plain, */*" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (payload !== undefined) headers["content-type"] = "application/json";
  const started = Date.now();
  const secure = u.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      u,
      {
        method: opts.method ?? "GET",
        headers,
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
        ...(secure ? { ca: opts.ca, rejectUnauthorized: opts.verifyTls ?? true } : {}),
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          if (body.length < MAX_BODY) body += c;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            ms: Date.now() - started,
            at: Date.now(),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** Why a request failed, with the system error code when there is one (ECONNREFUSED, ENOTFOUND). */
export function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : e.message;
}

/** `401 Unauthorized` from atticd's `{"code","error","message"}`, or the status alone. */
export function said(a: Answer): string {
  try {
    const j = JSON.parse(a.body) as { error?: string };
    if (j.error) return `${a.status} ${j.error}`;
  } catch {
    // Not atticd's JSON (a proxy's page): the status says enough.
  }
  return `${a.status}`;
}

export type CertificateReport =
  { peer: tls.PeerCertificate; authorizationError?: string; identityError?: string } | { error: string };

/** The server's certificate and what is wrong with it, from a handshake that accepts anything. */
export function certificate(url: URL, ca: string[] | undefined): Promise<CertificateReport> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port: Number(url.port || 443),
      ...(isIP(host) ? {} : { servername: host }),
      ...(ca ? { ca } : {}),
      rejectUnauthorized: false,
    });
    socket.setTimeout(REQUEST_TIMEOUT_MS, () =>
      socket.destroy(new Error(`no TLS handshake within ${REQUEST_TIMEOUT_MS / 1000} s`)),
    );
    socket.on("error", (err) => resolve({ error: `TLS handshake failed (${reason(err)})` }));
    socket.on("secureConnect", () => {
      const peer = socket.getPeerCertificate();
      const authorizationError = socket.authorizationError ? String(socket.authorizationError) : undefined;
      const identity = tls.checkServerIdentity(host, peer);
      socket.end();
      resolve({
        peer,
        ...(authorizationError ? { authorizationError } : {}),
        ...(identity ? { identityError: identity.message } : {}),
      });
    });
  });
}
