/**
 * Checks of a site as a whole: the nix.conf snippet (no network), the endpoint (`GET /`, atticd's
 * only unauthenticated route, answered without the database), its certificate, and its clock.
 */
import { type Answer, certificate, reason, request, said } from "./http";
import { multiSiteSubstituters, SITE_ORDER, type Substituter } from "../../../components/attic/nixConf";
import { DAY, type SiteRun, date, dayCount } from "./site";

/**
 * The documented substituter order (index.ts, components/attic/nixConf.ts): a site's own caches;
 * with several cache sites, those of the site and every farther one (office, vps, aws) by priority.
 */
function expectedSubstituters(run: SiteRun): Substituter[] {
  const sites = Object.entries(run.all).filter(([name]) => (SITE_ORDER as readonly string[]).includes(name));
  return sites.length > 1
    ? multiSiteSubstituters(
        sites.map(([site, s]) => ({ site, caches: s.caches })),
        run.name,
      )
    : Object.values(run.site.caches);
}

export function checkSnippet(run: SiteRun): void {
  const what = "nix.conf snippet";
  const conf = run.site.nixConf;
  const line = (key: string) =>
    (new RegExp(`^${key}\\s*=\\s*(.*)$`, "m").exec(conf)?.[1] ?? "").split(/\s+/).filter(Boolean);
  const subs = line("extra-substituters");
  const keys = line("extra-trusted-public-keys");
  const want = expectedSubstituters(run);
  const endpoints = Object.values(run.all).map((s) => s.endpoint);
  const stray = subs.filter((s) => !endpoints.some((e) => s.startsWith(e)));
  if (stray.length > 0)
    run.add(what, "fail", `lists ${stray.join(" ")}, which is under no site endpoint of the outputs`);
  else if (subs.join(" ") !== want.map((c) => c.substituter).join(" "))
    run.add(
      what,
      "fail",
      `extra-substituters is "${subs.join(" ")}"; the documented order is "${want.map((c) => c.substituter).join(" ")}"`,
    );
  else if (keys.join(" ") !== want.map((c) => c.publicKey).join(" "))
    run.add(
      what,
      "fail",
      "extra-trusted-public-keys does not list the caches' public keys in the same order",
    );
  else run.add(what, "pass", `substituters ${subs.join(" ")} with their keys, in the documented order`);
}

/**
 * `GET /` until it answers 200 or --wait runs out (targets registering, DNS propagating right after
 * an up). The certificate is not checked here, so that "down" and "bad certificate" stay apart.
 */
export async function checkEndpoint(run: SiteRun): Promise<Answer | undefined> {
  const what = "endpoint answers GET /";
  const { endpoint } = run.site;
  const wait = run.opts.waitSeconds;
  const deadline = Date.now() + wait * 1000;
  let last: string;
  for (let attempts = 1; ; attempts++) {
    try {
      const a = await request(endpoint, { ca: run.trust, verifyTls: false });
      if (a.status === 200) {
        const retried = attempts > 1 ? ` after ${attempts} attempts` : "";
        run.add(what, "pass", `${endpoint} answered 200 in ${a.ms} ms${retried}`);
        return a;
      }
      last = `answered ${said(a)}`;
    } catch (err) {
      last = `could not be reached (${reason(err)})`;
    }
    // About ten attempts within a short wait, one every 2 s within a long one; never past the deadline.
    const pause = Math.min(2000, (wait * 1000) / 10, deadline - Date.now());
    if (pause <= 0) {
      const n = `${attempts} attempt${attempts === 1 ? "" : "s"}`;
      run.add(what, "fail", `${endpoint} ${last} (${n} within --wait ${wait} s)`);
      return undefined;
    }
    await new Promise((r) => setTimeout(r, pause));
  }
}

/** The certificate Nix will see: chain, host name, days left. Returns whether it is valid. */
export async function checkCertificate(run: SiteRun): Promise<boolean> {
  const what = "TLS certificate";
  const url = new URL(run.site.endpoint);
  const cert = await certificate(url, run.trust);
  if ("error" in cert) {
    run.add(what, "fail", cert.error);
    return false;
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const notAfter = new Date(cert.peer.valid_to);
  const left = (notAfter.getTime() / 1000 - run.now) / DAY;
  const day = notAfter.toISOString().slice(0, 10);
  const issuer = cert.peer.issuer?.CN ?? cert.peer.issuer?.O ?? "an unnamed issuer";
  const warnDays = run.opts.certWarnDays;
  if (cert.authorizationError === "CERT_HAS_EXPIRED")
    run.add(what, "fail", `expired on ${day} (${dayCount(Math.ceil(-left))} ago): Nix refuses the cache`);
  else if (cert.identityError) run.add(what, "fail", `${cert.identityError}: Nix refuses the cache`);
  else if (cert.authorizationError)
    run.add(
      what,
      "fail",
      `${cert.authorizationError}: the chain does not lead to a trusted CA${run.opts.ca ? "" : " (for a private CA pass --ca <pem>)"}`,
    );
  else if (left < warnDays)
    run.add(
      what,
      "warn",
      `valid for ${host}, issued by ${issuer}, expires ${day}: only ${dayCount(Math.floor(left))} left (--cert-warn-days ${warnDays})`,
    );
  else
    run.add(
      what,
      "pass",
      `valid for ${host}, issued by ${issuer}, expires ${day} (${dayCount(Math.floor(left))})`,
    );
  return !cert.authorizationError && !cert.identityError;
}

/** The server's clock from its Date header: atticd allows no skew for nbf (jwt-simple, no tolerance). */
export function checkClock(run: SiteRun, root: Answer): void {
  const serverDate = Date.parse(String(root.headers.date ?? ""));
  if (Number.isNaN(serverDate)) return run.add("clock", "skip", "the server sent no Date header");
  // Date has whole seconds, truncated: the server's time was half a second later on average.
  const serverNow = (serverDate + 500) / 1000;
  const skew = Math.round(serverNow - root.at / 1000);
  const early = [...run.tokens]
    .map(([name, t]) => [name, t.claims.nbf] as const)
    .filter(
      (e): e is readonly [string, number] => typeof e[1] === "number" && e[1] > serverNow && e[1] <= run.now,
    );
  const clock =
    Math.abs(skew) <= 1
      ? "the server's clock agrees with ours (±1 s)"
      : `the server's clock is ${Math.abs(skew)} s ${skew > 0 ? "ahead of" : "behind"} ours`;
  if (early.length > 0)
    run.add(
      "clock",
      "warn",
      `${clock}: it rejects ${early.map(([t, nbf]) => `token ${t} until ${date(nbf)} (nbf)`).join(", ")}; fix the server's time (NTP)`,
    );
  else if (Math.abs(skew) > 60)
    run.add(
      "clock",
      "warn",
      `${clock}: ${skew < 0 ? "it rejects a token until its nbf passes on that clock" : `tokens expire ${skew} s early there`}; fix its time (NTP)`,
    );
  else run.add("clock", "pass", clock);
}
