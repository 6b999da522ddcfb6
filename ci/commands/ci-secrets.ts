/**
 * npm run ci-secrets -- (--stack <name> | --outputs <file>)
 *                      (--github <owner/repo> [--environment <env>] | --gitlab <group/project>)
 *                      [--site aws|office|vps] [--cache <name>] [--token <name>] [--dry-run]
 *
 * Reads the stack's outputs (`pulumi stack output --json --show-secrets`, or that JSON from a file),
 * parsed with the outputs contract (components/outputs.ts, docs/outputs.md), and stores what a Nix
 * project's CI needs to use a cache site's cache: ATTIC_ENDPOINT, ATTIC_CACHE, ATTIC_PUBLIC_KEY,
 * ATTIC_SUBSTITUTER and ATTIC_TOKEN. Every value goes to the CLI on stdin, never on its command line.
 *
 * On GitHub the token is a secret and the rest are variables, so that workflows of fork pull
 * requests (which get no secrets) can still substitute read-only. On GitLab all are CI/CD
 * variables, the token masked.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { SITE_ORDER } from "../../components/attic/nixConf";
import { OutputsError, parseStackOutputs } from "../../components/outputs";

const USAGE = `usage: npm run ci-secrets -- (--stack <name> | --outputs <file>)
                           (--github <owner/repo> [--environment <env>] | --gitlab <group/project>)
                           [--site aws|office|vps] [--cache <name>] [--token <name>] [--dry-run]

Sets ATTIC_ENDPOINT, ATTIC_CACHE, ATTIC_PUBLIC_KEY, ATTIC_SUBSTITUTER (variables) and ATTIC_TOKEN (secret)
from the stack's outputs: \`pulumi stack output --json --show-secrets --stack <name>\`, or that JSON
in a file (--outputs; no Pulumi CLI needed). --dry-run lists what would be set, without values.`;

export class UsageError extends Error {}

export interface Setting {
  name: string;
  value: string;
  secret: boolean;
}

function run(
  cmd: string,
  args: string[],
  input?: string,
): { status: number | null; stdout: string; stderr: string; missing: boolean } {
  const r = spawnSync(cmd, args, { input, encoding: "utf8" });
  const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", missing };
}

/** The token CI gets unless --token says otherwise: `ci`, or the only one. CI pushes with it. */
export function ciTokenName(tokens: string[]): string | undefined {
  return tokens.includes("ci") ? "ci" : tokens.length === 1 ? tokens[0] : undefined;
}

/** What to set, from the stack outputs and the choices on the command line (OutputsError: not the contract's). */
export function settingsFrom(
  outputs: unknown,
  choice: { site?: string; cache?: string; token?: string },
): Setting[] {
  const parsed = parseStackOutputs(outputs);
  const sites = SITE_ORDER.filter((s) => parsed[s]);
  if (sites.length === 0)
    throw new UsageError("the stack has no cache site (aws, office or vps): nothing serves a cache");
  const siteName = choice.site ?? (sites.length === 1 ? sites[0] : undefined);
  if (!siteName) throw new UsageError(`the stack has sites ${sites.join(" and ")}: choose one with --site`);
  const known = SITE_ORDER.find((s) => s === siteName);
  const site = known && parsed[known];
  if (!site)
    throw new UsageError(`--site ${siteName}: the stack has no such site (it has ${sites.join(", ")})`);
  const caches = Object.keys(site.caches);
  const cacheName = choice.cache ?? (caches.length === 1 ? caches[0] : undefined);
  if (!cacheName) throw new UsageError(`the site has caches ${caches.join(", ")}: choose one with --cache`);
  const cache = site.caches[cacheName];
  if (!cache) throw new UsageError(`--cache ${cacheName}: no such cache (the site has ${caches.join(", ")})`);
  const tokens = Object.keys(site.tokens);
  const tokenName = choice.token ?? ciTokenName(tokens);
  if (!tokenName) {
    throw new UsageError(
      tokens.length === 0
        ? "the stack mints no tokens: add one under attic-infra:attic.tokens and run pulumi up"
        : `the site has tokens ${tokens.join(", ")}: choose one with --token`,
    );
  }
  const token = site.tokens[tokenName];
  if (!token)
    throw new UsageError(`--token ${tokenName}: no such token (the stack has ${tokens.join(", ")})`);
  return [
    { name: "ATTIC_ENDPOINT", value: site.endpoint, secret: false },
    { name: "ATTIC_CACHE", value: cacheName, secret: false },
    { name: "ATTIC_PUBLIC_KEY", value: cache.publicKey, secret: false },
    { name: "ATTIC_SUBSTITUTER", value: cache.substituter, secret: false },
    { name: "ATTIC_TOKEN", value: token, secret: true },
  ];
}

/** The outputs JSON: from the file given, else from `pulumi stack output`. */
function readOutputs(values: { stack?: string; outputs?: string }): unknown {
  let text: string;
  if (values.outputs) {
    try {
      text = readFileSync(values.outputs, "utf8");
    } catch (err) {
      throw new UsageError(`--outputs ${values.outputs}: ${(err as Error).message}`);
    }
  } else {
    const pulumi = run("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", values.stack!]);
    if (pulumi.missing)
      throw new UsageError(
        "pulumi is not installed (https://www.pulumi.com/docs/install/); or pass --outputs <file>",
      );
    if (pulumi.status !== 0) {
      throw new UsageError(
        `pulumi stack output --stack ${values.stack} failed: ${pulumi.stderr.trim() || "(no message)"}`,
      );
    }
    text = pulumi.stdout;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${values.outputs ?? "pulumi stack output"} did not hold JSON`);
  }
}

function requireCli(cli: "gh" | "glab"): void {
  const r = run(cli, ["auth", "status"]);
  if (r.missing) {
    throw new UsageError(
      `${cli} is not installed: ${cli === "gh" ? "https://cli.github.com" : "https://gitlab.com/gitlab-org/cli"}`,
    );
  }
  if (r.status !== 0)
    throw new UsageError(
      `${cli} is not logged in: run \`${cli} auth login\` (${(r.stderr || r.stdout).trim()})`,
    );
}

function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      outputs: { type: "string" },
      github: { type: "string" },
      gitlab: { type: "string" },
      environment: { type: "string" },
      site: { type: "string" },
      cache: { type: "string" },
      token: { type: "string" },
      "dry-run": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if ((values.stack === undefined) === (values.outputs === undefined))
    throw new UsageError("give exactly one of --stack or --outputs");
  if ((values.github === undefined) === (values.gitlab === undefined))
    throw new UsageError("give exactly one of --github or --gitlab");
  if (values.environment && !values.github)
    throw new UsageError("--environment is for GitHub environments (with --github)");
  const dryRun = values["dry-run"] ?? false;

  const outputs = readOutputs(values);
  const choice: { site?: string; cache?: string; token?: string } = {};
  if (values.site) choice.site = values.site;
  if (values.cache) choice.cache = values.cache;
  if (values.token) choice.token = values.token;
  const settings = settingsFrom(outputs, choice);

  const target = values.github
    ? `GitHub ${values.github}${values.environment ? ` (environment ${values.environment})` : ""}`
    : `GitLab ${values.gitlab}`;
  if (dryRun) {
    process.stdout.write(`would set on ${target}:\n`);
    for (const s of settings)
      process.stdout.write(
        `  ${s.name} (${values.github ? (s.secret ? "secret" : "variable") : s.secret ? "masked variable" : "variable"})\n`,
      );
    return 0;
  }

  if (values.github) {
    requireCli("gh");
    const scope = ["--repo", values.github, ...(values.environment ? ["--env", values.environment] : [])];
    for (const s of settings) {
      const r = run("gh", [s.secret ? "secret" : "variable", "set", s.name, ...scope], s.value);
      if (r.status !== 0)
        throw new UsageError(`gh could not set ${s.name} on ${values.github}: ${r.stderr.trim()}`);
      process.stdout.write(`set ${s.name} (${s.secret ? "secret" : "variable"}) on ${target}\n`);
    }
  } else {
    requireCli("glab");
    for (const s of settings) {
      const flags = ["--repo", values.gitlab!, ...(s.secret ? ["--masked"] : [])];
      let r = run("glab", ["variable", "set", s.name, ...flags], s.value);
      if (r.status !== 0 && /already been taken|already exists/i.test(r.stderr)) {
        r = run("glab", ["variable", "update", s.name, ...flags], s.value);
      }
      if (r.status !== 0)
        throw new UsageError(`glab could not set ${s.name} on ${values.gitlab}: ${r.stderr.trim()}`);
      process.stdout.write(`set ${s.name} (${s.secret ? "masked variable" : "variable"}) on ${target}\n`);
    }
  }
  return 0;
}

// Run as a program (npm run ci-secrets), not when imported by the tests.
if (process.argv[1]?.endsWith("ci-secrets.ts")) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (err) {
    if (
      err instanceof UsageError ||
      err instanceof OutputsError ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      process.stderr.write(`ci-secrets: ${(err as Error).message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    throw err;
  }
}
