/**
 * All checks of a stack's outputs, site by site, in the order a user would debug them: the tokens
 * and the nix.conf snippet (local), the endpoint, its certificate, its clock, then each cache. When
 * the endpoint does not answer or its certificate is invalid, what depends on it is skipped. Last,
 * for the AWS site, whether its alarm topic has a confirmed subscriber (alarms.ts).
 */
import * as tls from "node:tls";
import type { StackOutputs } from "../../../components/outputs";
import { checkAlarmTopic } from "./alarms";
import { checkPullTokens } from "./pullTokens";
import { checkCache } from "./caches";
import { checkCertificate, checkClock, checkEndpoint, checkSnippet } from "./server";
import { type Check, type Options, type SiteRun, UsageError, sitesOf } from "./site";
import { checkTokens } from "./tokens";

export async function verify(outputs: StackOutputs, opts: Options): Promise<Check[]> {
  const all = sitesOf(outputs);
  const names = Object.keys(all);
  if (names.length === 0)
    throw new UsageError("the outputs have no cache site (aws, office or vps): nothing serves a cache");
  for (const s of opts.sites ?? [])
    if (!all[s])
      throw new UsageError(`--site ${s}: the outputs have no such site (they have ${names.join(", ")})`);

  const trust = opts.ca ? [...tls.rootCertificates, opts.ca] : undefined;
  const tokenKey = outputs.tokenPublicKey;
  const checks: Check[] = [];
  for (const name of opts.sites?.length ? opts.sites : names) {
    const run: SiteRun = {
      name,
      site: all[name]!,
      all,
      opts,
      trust,
      tokenKey,
      now: Date.now() / 1000,
      tokens: new Map(),
      add: (check, status, detail) => checks.push({ site: name, check, status, detail }),
    };
    await checkSite(run);
    // Independent of the endpoint: an alarm topic without a subscriber is a failure of its own.
    if (name === "aws" && outputs.aws) await checkAlarmTopic(run, outputs.aws.alarmTopicArn);
  }
  return checks;
}

async function checkSite(run: SiteRun): Promise<void> {
  checkTokens(run);
  checkPullTokens(run);
  checkSnippet(run);
  const https = new URL(run.site.endpoint).protocol === "https:";
  const skipRest = (why: string, checks: string[]) => {
    for (const c of checks) run.add(c, "skip", why);
    for (const cache of Object.keys(run.site.caches)) run.add(`cache ${cache}`, "skip", why);
  };
  const root = await checkEndpoint(run);
  if (!root)
    return skipRest("the endpoint does not answer", https ? ["TLS certificate", "clock"] : ["clock"]);
  if (https && !(await checkCertificate(run))) return skipRest("the certificate is not valid", ["clock"]);
  checkClock(run, root);
  for (const [cache, out] of Object.entries(run.site.caches)) await checkCache(run, cache, out);
}
