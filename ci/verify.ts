/**
 * npm run verify -- (--stack <name> | --outputs <file>) [--site <name>]... [--json] [--ca <pem>]
 *                   [--cert-warn-days <n>] [--wait <seconds>]
 *
 * Proves a deployed cache works for the people who use it, with nothing but the stack's outputs:
 * the endpoint answers, each cache's nix-cache-info and public key are what the outputs (and so
 * every consumer's nix.conf) say, a private cache refuses strangers, each token is what it claims
 * and the server agrees, the clocks agree, the certificate is valid, and the nix.conf snippet lists
 * the checked substituters in the documented order. `pulumi up` succeeding proves none of this.
 *
 * It only reads: pulls are nix-cache-info and cache-config GETs, pushes are proven with atticd's
 * get-missing-paths query (needs push, writes nothing); create, configure and destroy are never
 * probed. Tokens appear by name only, never by value.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { isIP } from "node:net";
import * as tls from "node:tls";
import { parseArgs } from "node:util";
import { ATTIC_CLAIM, verifyJwt } from "../components/attic/tokens";
import { ciTokenName } from "./ci-secrets";

const USAGE = `usage: npm run verify -- (--stack <name> | --outputs <file>) [options]

Checks a deployed attic cache end to end with the stack's outputs, read-only.

  --stack <name>          read \`pulumi stack output --show-secrets --json --stack <name>\`
  --outputs <file>        read that JSON from a file instead (no Pulumi CLI needed)
  --site <name>           check only this site (repeatable, or comma-separated), e.g. --site aws
                          where the office LAN is out of reach; default: every site in the outputs
  --json                  print {"checks": [...], "summary": {...}} instead of lines (for CI)
  --ca <pem file>         also trust this CA certificate (a private CA; public roots stay trusted)
  --cert-warn-days <n>    warn when the certificate expires within n days (default 21)
  --wait <seconds>        how long GET / is retried while a fresh deploy settles (default 180)
  -h, --help              this text

One line per check: ✓ passed, ✗ failed, ! warning, skip (and why). Exit status 1 when any check
failed, 2 on a usage error, 0 otherwise (warnings included).`;

const STORE_DIR = "/nix/store";
/** A syntactically valid store path hash that no cache holds: the push probe asks for it. */
const PROBE_HASH = "00000000000000000000000000000000";
const REQUEST_TIMEOUT_MS = 10_000;
const DAY = 86_400;

export class UsageError extends Error {}

export type Status = "pass" | "fail" | "warn" | "skip";
export interface Check {
  site: string;
  check: string;
  status: Status;
  detail: string;
}

interface CacheOut {
  substituter: string;
  publicKey: string;
  public?: boolean;
  priority?: number;
}
interface SiteOut {
  endpoint: string;
  caches: Record<string, CacheOut>;
  tokens: Record<string, string>;
  nixConf?: string;
}

export interface Options {
  sites?: string[];
  ca?: string;
  certWarnDays: number;
  waitSeconds: number;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
  /** When the answer arrived (epoch ms), to compare with its Date header. */
  at: number;
}

function request(
  url: string,
  opts: { method?: string; token?: string; body?: unknown; ca?: string[]; verifyTls?: boolean },
): Promise<Answer> {
  const u = new URL(url);
  const headers: Record<string, string> = { accept: "application/json, text/plain, */*" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (payload !== undefined) headers["content-type"] = "application/json";
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = (u.protocol === "https:" ? https : http).request(
      u,
      {
        method: opts.method ?? "GET",
        headers,
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
        ...(u.protocol === "https:" ? { ca: opts.ca, rejectUnauthorized: opts.verifyTls ?? true } : {}),
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          if (body.length < 65_536) body += c;
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

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { cause?: unknown };
  return e.code ? `${e.code}: ${e.message}` : e.message;
}

/** `401 Unauthorized` from atticd's `{"code","error","message"}`, or the status alone. */
function said(a: Answer): string {
  try {
    const j = JSON.parse(a.body) as { error?: string };
    if (j.error) return `${a.status} ${j.error}`;
  } catch {
    // Not atticd's JSON (a proxy's page): the status says enough.
  }
  return `${a.status}`;
}

function decodeClaims(jwt: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString()) as Record<
      string,
      unknown
    >;
  } catch {
    return undefined;
  }
}

/** The permission letters a token's claim grants on a cache: exact name first, then globs (atticd). */
function grants(claims: Record<string, unknown>, cache: string): Record<string, number> {
  const caches = ((claims[ATTIC_CLAIM] as { caches?: unknown } | undefined)?.caches ?? {}) as Record<
    string,
    Record<string, number>
  >;
  if (caches[cache]) return caches[cache];
  for (const [pattern, perms] of Object.entries(caches)) {
    const re = new RegExp(`^${pattern.replace(/[-+.]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    if (re.test(cache)) return perms;
  }
  return {};
}

const date = (epoch: number) => new Date(epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
const days = (seconds: number) => Math.floor(seconds / DAY);
const dayCount = (n: number) => `${n} day${n === 1 ? "" : "s"}`;

/** The site objects among the outputs: anything with an endpoint, caches and tokens. */
export function sitesOf(outputs: Record<string, unknown>): Record<string, SiteOut> {
  const sites: Record<string, SiteOut> = {};
  for (const [name, v] of Object.entries(outputs)) {
    const o = v as Partial<SiteOut> | null;
    if (
      o &&
      typeof o === "object" &&
      typeof o.endpoint === "string" &&
      o.caches &&
      typeof o.caches === "object"
    )
      sites[name] = { tokens: {}, ...o } as SiteOut;
  }
  return sites;
}

/** The documented substituter order (index.ts): a site's own caches; the office then falls back to AWS. */
function expectedSubstituters(name: string, site: SiteOut, all: Record<string, SiteOut>): CacheOut[] {
  const own = Object.values(site.caches);
  return name === "office" && all.aws ? [...own, ...Object.values(all.aws.caches)] : own;
}

export async function verify(outputs: Record<string, unknown>, opts: Options): Promise<Check[]> {
  const all = sitesOf(outputs);
  const names = Object.keys(all);
  if (names.length === 0)
    throw new UsageError(
      "the outputs have no site with an endpoint and caches (is this an attic-infra stack?)",
    );
  for (const s of opts.sites ?? []) {
    if (!all[s])
      throw new UsageError(`--site ${s}: the outputs have no such site (they have ${names.join(", ")})`);
  }
  const trust = opts.ca ? [...tls.rootCertificates, opts.ca] : undefined;
  const tokenKey = typeof outputs.tokenPublicKey === "string" ? outputs.tokenPublicKey : undefined;
  const checks: Check[] = [];
  for (const name of opts.sites?.length ? opts.sites : names) {
    checks.push(...(await verifySite(name, all[name]!, all, { ...opts, trust, tokenKey })));
  }
  return checks;
}

async function verifySite(
  name: string,
  site: SiteOut,
  all: Record<string, SiteOut>,
  opts: Options & { trust: string[] | undefined; tokenKey: string | undefined },
): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (check: string, status: Status, detail: string) =>
    checks.push({ site: name, check, status, detail });
  const endpoint = new URL(site.endpoint);
  const now = Date.now() / 1000;

  // Tokens first: local facts, needed to choose who asks what.
  const tokens = new Map<string, { claims: Record<string, unknown>; valid: boolean }>();
  for (const [tname, jwt] of Object.entries(site.tokens)) {
    let claims = decodeClaims(jwt);
    let problem: string | undefined;
    if (!claims) problem = "is not a JWT";
    else if (!opts.tokenKey) problem = undefined;
    else {
      try {
        claims = verifyJwt(jwt, opts.tokenKey).claims as unknown as Record<string, unknown>;
      } catch (err) {
        problem = `does not verify with the stack's tokenPublicKey (${(err as Error).message}): atticd would treat it as anonymous; re-run pulumi up and ci-secrets`;
      }
    }
    const c = claims ?? {};
    const exp = typeof c.exp === "number" ? c.exp : undefined;
    const nbf = typeof c.nbf === "number" ? c.nbf : undefined;
    if (!problem && exp !== undefined && exp < now)
      problem = `expired on ${date(exp)}: atticd treats it as anonymous; extend validUntil and pulumi up`;
    const perms = Object.keys(site.caches)
      .map((cache) => {
        const g = grants(c, cache);
        const words = [g.r === 1 && "pull", g.w === 1 && "push"].filter(Boolean).join("+");
        return `${cache}: ${words || "nothing"}`;
      })
      .join(", ");
    const what = `token ${tname}`;
    if (problem) add(what, "fail", `${problem}`);
    else {
      const life =
        exp === undefined ? "never expires" : `valid until ${date(exp)} (${dayCount(days(exp - now))})`;
      const sig = opts.tokenKey
        ? "signature verifies"
        : "signature not checked: the outputs have no tokenPublicKey";
      const detail = `subject ${String(c.sub)}, ${life}, ${perms}; ${sig}`;
      if (nbf !== undefined && nbf > now) add(what, "warn", `${detail}; not valid before ${date(nbf)}`);
      else if (exp !== undefined && exp - now < opts.certWarnDays * DAY)
        add(what, "warn", `${detail}; expires in ${dayCount(days(exp - now))}: extend validUntil`);
      else add(what, opts.tokenKey ? "pass" : "warn", detail);
    }
    tokens.set(tname, { claims: c, valid: !problem });
  }

  // The nix.conf snippet: the checked substituters and keys, in the documented order.
  if (site.nixConf === undefined) add("nix.conf snippet", "skip", "the outputs have no nixConf");
  else {
    const line = (key: string) =>
      (new RegExp(`^${key}\\s*=\\s*(.*)$`, "m").exec(site.nixConf!)?.[1] ?? "").split(/\s+/).filter(Boolean);
    const subs = line("extra-substituters");
    const keys = line("extra-trusted-public-keys");
    const want = expectedSubstituters(name, site, all);
    const endpoints = Object.values(all).map((s) => s.endpoint);
    const stray = subs.filter((s) => !endpoints.some((e) => s.startsWith(e)));
    if (stray.length > 0)
      add(
        "nix.conf snippet",
        "fail",
        `lists ${stray.join(" ")}, which is under no site endpoint of the outputs`,
      );
    else if (subs.join(" ") !== want.map((c) => c.substituter).join(" "))
      add(
        "nix.conf snippet",
        "fail",
        `extra-substituters is "${subs.join(" ")}"; the documented order is "${want.map((c) => c.substituter).join(" ")}"`,
      );
    else if (keys.join(" ") !== want.map((c) => c.publicKey).join(" "))
      add(
        "nix.conf snippet",
        "fail",
        "extra-trusted-public-keys does not list the caches' public keys in the same order",
      );
    else
      add(
        "nix.conf snippet",
        "pass",
        `substituters ${subs.join(" ")} with their keys, in the documented order`,
      );
  }

  // The endpoint, retried while a fresh deploy settles. Certificate problems are the next check's.
  let root: Answer | undefined;
  let last = "";
  let attempts = 0;
  const deadline = Date.now() + opts.waitSeconds * 1000;
  for (;;) {
    attempts++;
    try {
      const a = await request(site.endpoint, { ca: opts.trust, verifyTls: false });
      if (a.status === 200) {
        root = a;
        break;
      }
      last = `answered ${said(a)}`;
    } catch (err) {
      last = `could not be reached (${reason(err)})`;
    }
    // About ten attempts within a short wait, one every 2 s within a long one; never past the deadline.
    const pause = Math.min(2000, (opts.waitSeconds * 1000) / 10, deadline - Date.now());
    if (pause <= 0) break;
    await new Promise((r) => setTimeout(r, pause));
  }
  const retried = attempts > 1 ? ` after ${attempts} attempts` : "";
  if (!root) {
    add(
      "endpoint answers GET /",
      "fail",
      `${site.endpoint} ${last} (${attempts} attempt${attempts === 1 ? "" : "s"} within --wait ${opts.waitSeconds} s)`,
    );
    const rest = ["TLS certificate", "clock"];
    for (const r of endpoint.protocol === "https:" ? rest : rest.slice(1))
      add(r, "skip", "the endpoint does not answer");
    for (const cache of Object.keys(site.caches))
      add(`cache ${cache}`, "skip", "the endpoint does not answer");
    return checks;
  }
  add("endpoint answers GET /", "pass", `${site.endpoint} answered 200 in ${root.ms} ms${retried}`);

  if (endpoint.protocol === "https:") {
    const cert = await certificate(endpoint, opts.trust);
    const host = endpoint.hostname.replace(/^\[|\]$/g, "");
    if ("error" in cert) add("TLS certificate", "fail", cert.error);
    else {
      const left = (Date.parse(cert.peer.valid_to) / 1000 - now) / DAY;
      const expires = `expires ${new Date(cert.peer.valid_to).toISOString().slice(0, 10)}`;
      const issuer = cert.peer.issuer?.CN ?? cert.peer.issuer?.O ?? "?";
      if (cert.authorizationError === "CERT_HAS_EXPIRED")
        add(
          "TLS certificate",
          "fail",
          `expired on ${new Date(cert.peer.valid_to).toISOString().slice(0, 10)} (${dayCount(Math.ceil(-left))} ago): Nix refuses the cache`,
        );
      else if (cert.authorizationError)
        add(
          "TLS certificate",
          "fail",
          `${cert.authorizationError}: the chain does not lead to a trusted CA${opts.ca ? "" : " (for a private CA pass --ca <pem>)"}`,
        );
      else if (cert.identityError) add("TLS certificate", "fail", cert.identityError);
      else if (left < opts.certWarnDays)
        add(
          "TLS certificate",
          "warn",
          `valid for ${host}, issued by ${issuer}, ${expires}: only ${dayCount(Math.floor(left))} left (--cert-warn-days ${opts.certWarnDays})`,
        );
      else
        add(
          "TLS certificate",
          "pass",
          `valid for ${host}, issued by ${issuer}, ${expires} (${dayCount(Math.floor(left))})`,
        );
      if (cert.authorizationError || cert.identityError) {
        add("clock", "skip", "the certificate is not valid");
        for (const cache of Object.keys(site.caches))
          add(`cache ${cache}`, "skip", "the certificate is not valid");
        return checks;
      }
    }
  }

  const get = (url: string, token?: string) => request(url, { ca: opts.trust, ...(token ? { token } : {}) });

  // The server's clock: atticd allows no skew for nbf (jwt-simple without time tolerance).
  const serverDate = Date.parse(String(root.headers.date ?? ""));
  if (Number.isNaN(serverDate)) add("clock", "skip", "the server sent no Date header");
  else {
    // Date has whole seconds, truncated: the server's time was half a second later on average.
    const skew = Math.round((serverDate + 500 - root.at) / 1000);
    const early = [...tokens]
      .map(([t, { claims }]) => [t, claims.nbf] as const)
      .filter(([, nbf]) => typeof nbf === "number" && nbf > serverDate / 1000 && nbf <= now);
    const ahead =
      Math.abs(skew) <= 1
        ? "agrees with ours (±1 s)"
        : `is ${Math.abs(skew)} s ${skew > 0 ? "ahead of" : "behind"} ours`;
    if (early.length > 0)
      add(
        "clock",
        "warn",
        `the server's clock ${ahead}: it rejects ${early.map(([t, nbf]) => `token ${t} until ${date(nbf as number)} (nbf)`).join(", ")}; fix the server's time (NTP)`,
      );
    else if (Math.abs(skew) > 60)
      add(
        "clock",
        "warn",
        `the server's clock ${ahead}: ${skew < 0 ? "it rejects a token until its nbf passes on that clock" : `tokens expire ${skew} s early there`}; fix its time (NTP)`,
      );
    else add("clock", "pass", `the server's clock ${ahead}`);
  }

  for (const [cache, out] of Object.entries(site.caches)) {
    const isPublic = out.public;
    const puller = [...tokens].find(([, t]) => t.valid && grants(t.claims, cache).r === 1)?.[0];
    const infoUrl = `${out.substituter.replace(/\/$/, "")}/nix-cache-info`;
    const configUrl = new URL(`_api/v1/cache-config/${encodeURIComponent(cache)}`, site.endpoint).toString();

    // Anonymous access: a public cache answers it, a private one refuses.
    let anon: Answer | undefined;
    try {
      anon = await get(infoUrl);
    } catch (err) {
      add(`cache ${cache} nix-cache-info`, "fail", `${infoUrl} could not be reached (${reason(err)})`);
      continue;
    }
    if (isPublic === false) {
      if (anon.status === 200)
        add(
          `cache ${cache} refuses anonymous access`,
          "fail",
          `${infoUrl} answered 200 to an anonymous request, but the outputs say the cache is private: the server has it public (set is_public through pulumi up, or fix attic-infra:attic.caches)`,
        );
      else if (anon.status === 401 || anon.status === 403 || anon.status === 404)
        add(
          `cache ${cache} refuses anonymous access`,
          "pass",
          `anonymous nix-cache-info answered ${said(anon)}`,
        );
      else
        add(
          `cache ${cache} refuses anonymous access`,
          "fail",
          `anonymous nix-cache-info answered ${said(anon)}`,
        );
    }

    // nix-cache-info at the substituter URL the outputs hand out, as Nix asks for it.
    let info: Answer | undefined = isPublic === false ? undefined : anon;
    let asWhom = "anonymously";
    if (isPublic === false) {
      if (puller) {
        info = await get(infoUrl, site.tokens[puller]).catch(() => undefined);
        asWhom = `with token ${puller}`;
      }
    }
    if (!info)
      add(
        `cache ${cache} nix-cache-info`,
        "skip",
        `the cache is private and no valid exported token may pull it`,
      );
    else if (info.status !== 200)
      add(
        `cache ${cache} nix-cache-info`,
        "fail",
        `${infoUrl} answered ${said(info)} ${asWhom}${isPublic ? ", but the outputs say the cache is public" : ""}`,
      );
    else {
      const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(info.body)?.[1]?.trim();
      const problems: string[] = [];
      if (field("StoreDir") !== STORE_DIR)
        problems.push(`StoreDir is ${field("StoreDir")}, expected ${STORE_DIR}`);
      if (out.priority !== undefined && field("Priority") !== String(out.priority))
        problems.push(`Priority is ${field("Priority")}, the outputs say ${out.priority}`);
      if (problems.length)
        add(`cache ${cache} nix-cache-info`, "fail", `${problems.join("; ")} (pulumi up reconciles it)`);
      else
        add(
          `cache ${cache} nix-cache-info`,
          out.priority === undefined ? "warn" : "pass",
          `${asWhom}: StoreDir ${STORE_DIR}, Priority ${field("Priority")}${out.priority === undefined ? " (the outputs carry no priority to compare: run pulumi up)" : ""}`,
        );
    }

    // The public key every consumer pins in trusted-public-keys.
    const keyAsker = isPublic === false ? puller : undefined;
    if (isPublic === false && !keyAsker)
      add(
        `cache ${cache} public key`,
        "skip",
        "the cache is private and no valid exported token may pull it",
      );
    else {
      const a = await get(configUrl, keyAsker ? site.tokens[keyAsker] : undefined).catch(
        (err: unknown) => err as Error,
      );
      if (a instanceof Error)
        add(`cache ${cache} public key`, "fail", `${configUrl} could not be reached (${reason(a)})`);
      else if (a.status !== 200)
        add(`cache ${cache} public key`, "fail", `GET cache-config answered ${said(a)}`);
      else {
        const serverKey = (JSON.parse(a.body) as { public_key?: string }).public_key;
        if (serverKey === out.publicKey)
          add(`cache ${cache} public key`, "pass", `the server signs with ${serverKey}, as the outputs say`);
        else
          add(
            `cache ${cache} public key`,
            "fail",
            `the server signs with ${serverKey}, the outputs say ${out.publicKey}: Nix rejects every path of this cache where that key is trusted; run pulumi refresh and pulumi up, then update every consumer's trusted-public-keys`,
          );
      }
    }

    // What each token may do here, where the server can show it without side effects.
    const ci = ciTokenName(Object.keys(site.tokens));
    for (const [tname, t] of tokens) {
      const g = grants(t.claims, cache);
      if (!t.valid) {
        if (g.r === 1 || g.w === 1)
          add(`token ${tname} on ${cache}`, "skip", "the token itself is not valid (see above)");
        continue;
      }
      const jwt = site.tokens[tname]!;
      if (g.r === 1 && isPublic === false) {
        const a = await get(infoUrl, jwt).catch(() => undefined);
        if (a?.status === 200)
          add(`token ${tname} may pull from ${cache}`, "pass", "nix-cache-info answered 200");
        else
          add(
            `token ${tname} may pull from ${cache}`,
            "fail",
            `nix-cache-info answered ${a ? said(a) : "nothing"}: atticd treats a token it cannot verify as anonymous — does the server run this stack's signing key, and is its clock past the token's nbf?`,
          );
      } else if (g.r === 1)
        add(
          `token ${tname} may pull from ${cache}`,
          "skip",
          `${cache} is public: a pull would succeed even with an invalid token`,
        );
      else if (isPublic === false) {
        const a = await get(infoUrl, jwt).catch(() => undefined);
        if (a && a.status !== 200 && a.status < 500)
          add(`token ${tname} is refused pull on ${cache}`, "pass", `nix-cache-info answered ${said(a)}`);
        else
          add(
            `token ${tname} is refused pull on ${cache}`,
            "fail",
            `nix-cache-info answered ${a ? said(a) : "nothing"} to a token without pull`,
          );
      }

      const pushUrl = new URL("_api/v1/get-missing-paths", site.endpoint).toString();
      const probe = () =>
        request(pushUrl, {
          method: "POST",
          token: jwt,
          ca: opts.trust,
          body: { cache, store_path_hashes: [PROBE_HASH] },
        }).catch(() => undefined);
      if (g.w === 1) {
        const a = await probe();
        if (a?.status === 200)
          add(
            `token ${tname} may push to ${cache}`,
            "pass",
            "get-missing-paths (needs push, writes nothing) answered 200",
          );
        else
          add(
            `token ${tname} may push to ${cache}`,
            "fail",
            `get-missing-paths answered ${a ? said(a) : "nothing"} although the token grants push: atticd treats a token it cannot verify as anonymous — does the server run this stack's signing key, and is its clock past the token's nbf?`,
          );
      } else if (tname === ci && g.r === 1)
        add(
          `token ${tname} may push to ${cache}`,
          "fail",
          `the token grants pull but not push on ${cache}, and it is the token ci-secrets hands to CI, which pushes with it (ci/push.sh only warns when a push fails): add push to its permissions and pulumi up`,
        );
      else if (g.r === 1 || isPublic === false) {
        const a = await probe();
        if (a && (a.status === 401 || a.status === 403))
          add(`token ${tname} is refused push on ${cache}`, "pass", `get-missing-paths answered ${said(a)}`);
        else
          add(
            `token ${tname} is refused push on ${cache}`,
            "fail",
            `get-missing-paths answered ${a ? said(a) : "nothing"} to a token without push`,
          );
      }
    }
  }
  return checks;
}

async function certificate(
  url: URL,
  ca: string[] | undefined,
): Promise<
  { peer: tls.PeerCertificate; authorizationError?: string; identityError?: string } | { error: string }
> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port: Number(url.port || 443),
      ...(isIP(host) ? {} : { servername: host }),
      ...(ca ? { ca } : {}),
      rejectUnauthorized: false,
    });
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy(new Error("no TLS handshake within 10 s")));
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

const MARK: Record<Status, string> = { pass: "✓", fail: "✗", warn: "!", skip: "skip" };

export function summary(checks: Check[]): Record<Status, number> {
  const s: Record<Status, number> = { pass: 0, fail: 0, warn: 0, skip: 0 };
  for (const c of checks) s[c.status]++;
  return s;
}

/** Replaces any token value that slipped into a text with its name. */
function redact(text: string, tokens: Record<string, string>): string {
  let out = text;
  for (const [name, value] of Object.entries(tokens))
    if (value) out = out.split(value).join(`<token ${name}>`);
  return out;
}

function readOutputs(values: { stack?: string; outputs?: string }): Record<string, unknown> {
  let text: string;
  if (values.outputs) {
    try {
      text = readFileSync(values.outputs, "utf8");
    } catch (err) {
      throw new UsageError(`--outputs ${values.outputs}: ${(err as Error).message}`);
    }
  } else {
    const r = spawnSync("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", values.stack!], {
      encoding: "utf8",
    });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
      throw new UsageError(
        "pulumi is not installed (https://www.pulumi.com/docs/install/); or pass --outputs <file>",
      );
    if (r.status !== 0)
      throw new UsageError(
        `pulumi stack output --stack ${values.stack} failed: ${r.stderr.trim() || "(no message)"}`,
      );
    text = r.stdout;
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new UsageError(`${values.outputs ?? "pulumi stack output"} is not JSON`);
  }
}

/** The CLI: returns the exit status; writes through `out`. */
export async function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      outputs: { type: "string" },
      site: { type: "string", multiple: true },
      json: { type: "boolean" },
      ca: { type: "string" },
      "cert-warn-days": { type: "string" },
      wait: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  if ((values.stack === undefined) === (values.outputs === undefined))
    throw new UsageError("give exactly one of --stack or --outputs");
  const number = (flag: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new UsageError(`--${flag} ${v} is not a number of ${flag === "wait" ? "seconds" : "days"}`);
    return n;
  };
  let ca: string | undefined;
  if (values.ca) {
    try {
      ca = readFileSync(values.ca, "utf8");
    } catch (err) {
      throw new UsageError(`--ca ${values.ca}: ${(err as Error).message}`);
    }
  }
  const opts: Options = {
    sites: (values.site ?? []).flatMap((s) => s.split(",")).filter(Boolean),
    certWarnDays: number("cert-warn-days", values["cert-warn-days"], 21),
    waitSeconds: number("wait", values.wait, 180),
    ...(ca ? { ca } : {}),
  };
  const outputs = readOutputs(values);
  const checks = await verify(outputs, opts);
  const allTokens = Object.fromEntries(
    Object.entries(sitesOf(outputs)).flatMap(([s, site]) =>
      Object.entries(site.tokens).map(([t, v]) => [`${s}.${t}`, v]),
    ),
  );
  const sum = summary(checks);
  let text: string;
  if (values.json) text = `${JSON.stringify({ checks, summary: sum }, null, 2)}\n`;
  else {
    text = checks.map((c) => `${MARK[c.status].padEnd(4)} ${c.site}: ${c.check} — ${c.detail}\n`).join("");
    text += `\n${sum.fail > 0 ? "FAILED" : "OK"}: ${sum.pass} passed, ${sum.fail} failed, ${sum.warn} warnings, ${sum.skip} skipped\n`;
  }
  out(redact(text, allTokens));
  return sum.fail > 0 ? 1 : 0;
}

// Run as a program (npm run verify), not when imported by the tests.
if (process.argv[1]?.endsWith("verify.ts")) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
        process.stderr.write(`verify: ${(err as Error).message}\n\n${USAGE}\n`);
        process.exit(2);
      }
      throw err;
    },
  );
}
