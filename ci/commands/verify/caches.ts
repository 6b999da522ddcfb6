/**
 * Checks of one cache, as Nix and the attic client meet it: nix-cache-info at the substituter URL
 * the outputs hand out (binary_cache.rs: needs pull), refusal of anonymous requests when private,
 * the public key from cache-config (cache_config.rs: needs pull), then what each token may do
 * there. Only requests without side effects: pulls are those GETs, a push is proven with
 * get-missing-paths (get_missing_paths.rs: needs push, stores nothing).
 */
import { ciTokenName } from "../ci-secrets";
import { type Answer, reason, request, said } from "./http";
import type { CacheOut, SiteRun } from "./site";
import { discovers, grants } from "./tokens";

const STORE_DIR = "/nix/store";
/** A valid store path hash (32 characters of Nix's base32) that no cache holds. */
const PROBE_HASH = "00000000000000000000000000000000";
const NOT_VERIFIED =
  "atticd treats a token it cannot verify as anonymous — does the server run this stack's signing key, and is its clock past the token's nbf?";

export async function checkCache(run: SiteRun, cache: string, out: CacheOut): Promise<void> {
  const infoUrl = `${out.substituter.replace(/\/$/, "")}/nix-cache-info`;
  const get = (url: string, token?: string) =>
    request(url, { ca: run.trust, ...(token ? { token } : {}) }).catch(
      (err: unknown) => new Error(reason(err)),
    );

  // Anonymous, as Nix without netrc: a public cache answers, a private one refuses.
  const anon = await get(infoUrl);
  if (anon instanceof Error)
    return run.add(
      `cache ${cache} nix-cache-info`,
      "fail",
      `${infoUrl} could not be reached (${anon.message})`,
    );
  let isPublic = out.public;
  if (isPublic === undefined) {
    isPublic = anon.status === 200;
    run.add(
      `cache ${cache} visibility`,
      "warn",
      `the outputs do not say whether the cache is public (they predate verify: run pulumi up); it answers anonymous requests with ${said(anon)}`,
    );
  } else if (!isPublic) {
    const what = `cache ${cache} refuses anonymous access`;
    if (anon.status === 200)
      run.add(
        what,
        "fail",
        `${infoUrl} answered 200 to an anonymous request, but the outputs say the cache is private: the server has it public. pulumi refresh reads that back and the next pulumi up makes it private again; or declare it public: true in attic-infra:attic.caches`,
      );
    else if (anon.status === 401 && said(anon) === "401 Unauthorized")
      run.add(what, "pass", `anonymous nix-cache-info answered ${said(anon)}`);
    else
      run.add(
        what,
        "fail",
        `anonymous nix-cache-info answered ${said(anon)}; atticd answers an anonymous request for a private cache with exactly 401 Unauthorized, so this answer comes from something in front of it (a proxy, a load balancer rule) or the substituter URL reaches another server`,
      );
  }

  // A private cache is read with the first valid token that may pull it.
  const puller = [...run.tokens].find(([, t]) => t.valid && grants(t.claims, cache).r === 1);
  const asker = isPublic ? undefined : puller;
  const noReader = "the cache is private and no valid exported token may pull it";

  const what = `cache ${cache} nix-cache-info`;
  const info: Answer | Error | undefined = isPublic ? anon : asker && (await get(infoUrl, asker[1].jwt));
  const asWhom = asker ? `with token ${asker[0]}` : "anonymously";
  if (!info) run.add(what, "skip", noReader);
  else if (info instanceof Error) run.add(what, "fail", `${infoUrl} could not be reached (${info.message})`);
  else if (info.status !== 200)
    run.add(
      what,
      "fail",
      `${infoUrl} answered ${said(info)} ${asWhom}${out.public ? ", but the outputs say the cache is public" : ""}`,
    );
  else {
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "m").exec(info.body)?.[1]?.trim();
    const problems: string[] = [];
    if (field("StoreDir") !== STORE_DIR)
      problems.push(`StoreDir is ${field("StoreDir")}, expected ${STORE_DIR}`);
    if (out.priority !== undefined && field("Priority") !== String(out.priority))
      problems.push(`Priority is ${field("Priority")}, the outputs say ${out.priority}`);
    if (problems.length)
      run.add(
        what,
        "fail",
        `${problems.join("; ")} (pulumi refresh reads the server's settings back, and the next pulumi up restores the configured ones)`,
      );
    else if (out.priority === undefined)
      run.add(
        what,
        "warn",
        `${asWhom}: StoreDir ${STORE_DIR}, Priority ${field("Priority")} (the outputs carry no priority to compare: run pulumi up)`,
      );
    else run.add(what, "pass", `${asWhom}: StoreDir ${STORE_DIR}, Priority ${field("Priority")}`);
  }

  // The public key every consumer pins in trusted-public-keys.
  const keyCheck = `cache ${cache} public key`;
  if (!isPublic && !asker) run.add(keyCheck, "skip", noReader);
  else {
    const configUrl = new URL(
      `_api/v1/cache-config/${encodeURIComponent(cache)}`,
      run.site.endpoint,
    ).toString();
    const a = await get(configUrl, asker?.[1].jwt);
    if (a instanceof Error) run.add(keyCheck, "fail", `${configUrl} could not be reached (${a.message})`);
    else if (a.status !== 200) run.add(keyCheck, "fail", `GET cache-config answered ${said(a)} ${asWhom}`);
    else {
      const serverKey = (JSON.parse(a.body) as { public_key?: string }).public_key;
      if (serverKey === out.publicKey)
        run.add(keyCheck, "pass", `the server signs with ${serverKey}, as the outputs say`);
      else
        run.add(
          keyCheck,
          "fail",
          `the server signs with ${serverKey}, the outputs say ${out.publicKey}: Nix rejects every path of this cache where that key is trusted; run pulumi refresh and pulumi up, then update every consumer's trusted-public-keys`,
        );
    }
  }

  await checkTokensOn(run, cache, infoUrl, isPublic);
}

/** What each token may do on the cache, where the server can show it without side effects. */
async function checkTokensOn(run: SiteRun, cache: string, infoUrl: string, isPublic: boolean): Promise<void> {
  const ci = ciTokenName(Object.keys(run.site.tokens));
  const pushUrl = new URL("_api/v1/get-missing-paths", run.site.endpoint).toString();
  const ask = (url: string, jwt: string, body?: unknown) =>
    request(url, { ca: run.trust, token: jwt, ...(body ? { method: "POST", body } : {}) }).catch(
      () => undefined,
    );
  const answered = (a: Answer | undefined) => (a ? said(a) : "nothing (the request failed)");

  for (const [name, t] of run.tokens) {
    const g = grants(t.claims, cache);
    if (!t.valid) {
      if (g.r === 1 || g.w === 1)
        run.add(`token ${name} on ${cache}`, "skip", "the token itself is not valid (see above)");
      continue;
    }
    // Pull: provable only on a private cache (a public one answers an invalid token too).
    if (g.r === 1 && isPublic)
      run.add(
        `token ${name} may pull from ${cache}`,
        "skip",
        `${cache} is public: a pull would succeed even with an invalid token`,
      );
    else if (g.r === 1) {
      const a = await ask(infoUrl, t.jwt);
      if (a?.status === 200)
        run.add(`token ${name} may pull from ${cache}`, "pass", "nix-cache-info answered 200");
      else
        run.add(
          `token ${name} may pull from ${cache}`,
          "fail",
          `nix-cache-info answered ${answered(a)}: ${NOT_VERIFIED}`,
        );
    } else if (!isPublic) {
      // atticd: 403 when the token has some permission on the cache (discovery), else 401.
      const want = discovers(g) ? 403 : 401;
      const a = await ask(infoUrl, t.jwt);
      if (a?.status === want)
        run.add(`token ${name} is refused pull on ${cache}`, "pass", `nix-cache-info answered ${said(a)}`);
      else
        run.add(
          `token ${name} is refused pull on ${cache}`,
          "fail",
          `nix-cache-info answered ${answered(a)} to a token without pull; atticd answers ${want} there`,
        );
    }

    // Push: a public cache grants only pull to everyone, so the probe means something on any cache.
    const probe = () => ask(pushUrl, t.jwt, { cache, store_path_hashes: [PROBE_HASH] });
    if (g.w === 1) {
      const a = await probe();
      if (a?.status === 200 && g.r !== 1 && !isPublic) {
        // attic push and attic use read the cache's configuration first, which needs pull.
        const configUrl = new URL(`_api/v1/cache-config/${encodeURIComponent(cache)}`, run.site.endpoint);
        const c = await ask(configUrl.toString(), t.jwt);
        run.add(
          `token ${name} may push to ${cache}`,
          "fail",
          `get-missing-paths answered 200, but the token cannot pull ${cache}, which is private: attic push and attic use read the cache's configuration first (GET cache-config answered ${answered(c)} with this token), so every push fails; add pull to its permissions, pulumi up, then re-run ci-secrets`,
        );
      } else if (a?.status === 200)
        run.add(
          `token ${name} may push to ${cache}`,
          "pass",
          "get-missing-paths (needs push, writes nothing) answered 200",
        );
      else
        run.add(
          `token ${name} may push to ${cache}`,
          "fail",
          `get-missing-paths answered ${answered(a)} although the token grants push: ${NOT_VERIFIED}`,
        );
    } else if (name === ci && g.r === 1)
      run.add(
        `token ${name} may push to ${cache}`,
        "fail",
        `the token grants pull but not push on ${cache}, and it is the token ci-secrets hands to CI, which pushes with it (ci/nix-project/push.sh only warns when a push fails): add push to its permissions and pulumi up`,
      );
    else if (g.r === 1 || !isPublic) {
      // A public cache grants everyone pull, so the cache is discovered: 403. Otherwise the token decides.
      const want = isPublic || discovers(g) ? 403 : 401;
      const a = await probe();
      if (a?.status === want)
        run.add(`token ${name} is refused push on ${cache}`, "pass", `get-missing-paths answered ${said(a)}`);
      else
        run.add(
          `token ${name} is refused push on ${cache}`,
          "fail",
          `get-missing-paths answered ${answered(a)} to a token without push; atticd answers ${want} there`,
        );
    }
  }
}
