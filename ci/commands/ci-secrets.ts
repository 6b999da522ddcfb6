/**
 * npm run ci-secrets -- (--stack <name> | --outputs <file>)
 *                      (--github <owner/repo> [--environment <env>] | --gitlab <group/project>)
 *                      [--site aws|office|vps] [--cache <name>] [--token <name>] [--dry-run]
 *
 * Reads the stack's outputs (`pulumi stack output --json --show-secrets`, or that JSON from a file),
 * parsed with the outputs contract (components/outputs.ts, docs/outputs.md), and stores what a Nix
 * project's CI needs to use a cache site's cache: ATTIC_ENDPOINT, ATTIC_CACHE, ATTIC_PUBLIC_KEY,
 * ATTIC_SUBSTITUTER, ATTIC_PULL_TOKEN (the token narrowed to pull) and ATTIC_TOKEN (the push token).
 * Every value goes to the CLI on stdin, never on its command line.
 *
 * The push token must reach default-branch jobs only: atticd signs whatever is pushed, and code in a
 * pull request must never be able to push. On GitHub it is a secret of an environment (default
 * `attic-push`) whose deployment branch rule must exist, checked here before anything is set; the
 * pull token is a repository secret, the rest are variables (fork pull requests get no secrets and
 * still substitute). On GitLab all are CI/CD variables, both tokens masked, the push token protected
 * (passed only to pipelines of protected branches).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { SITE_ORDER } from "../../components/attic/nixConf";
import { OutputsError, parseStackOutputs } from "../../components/outputs";

/** The GitHub environment that holds the push token (the template's `environment:`). */
export const PUSH_ENVIRONMENT = "attic-push";

const USAGE = `usage: npm run ci-secrets -- (--stack <name> | --outputs <file>)
                           (--github <owner/repo> [--environment <env>] | --gitlab <group/project>)
                           [--site aws|office|vps] [--cache <name>] [--token <name>] [--dry-run]

Sets ATTIC_ENDPOINT, ATTIC_CACHE, ATTIC_PUBLIC_KEY, ATTIC_SUBSTITUTER (variables), ATTIC_PULL_TOKEN
(secret: the token narrowed to pull, for pull requests) and ATTIC_TOKEN (the push token) from the
stack's outputs: \`pulumi stack output --json --show-secrets --stack <name>\`, or that JSON in a file
(--outputs; no Pulumi CLI needed).

GitHub: ATTIC_TOKEN goes to the environment --environment (default ${PUSH_ENVIRONMENT}), which must
exist with a deployment branch rule (your default branch only); the rest to the repository.
GitLab: ATTIC_TOKEN is masked and protected (protect the default branch), ATTIC_PULL_TOKEN masked.
--dry-run lists what would be set, without values.`;

export class UsageError extends Error {}

export interface Setting {
  name: string;
  value: string;
  secret: boolean;
  /** The push token: an environment secret on GitHub, a protected variable on GitLab. */
  push?: boolean;
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
  const pullToken = site.pullTokens?.[tokenName];
  if (!pullToken)
    throw new UsageError(
      site.pullTokens === undefined
        ? "the outputs have no pullTokens (a stack last deployed before they existed): run pulumi up, which mints them, then ci-secrets again"
        : `token ${tokenName} grants pull nowhere, so it has no pull-only twin for pull requests: give it pull on the cache`,
    );
  return [
    { name: "ATTIC_ENDPOINT", value: site.endpoint, secret: false },
    { name: "ATTIC_CACHE", value: cacheName, secret: false },
    { name: "ATTIC_PUBLIC_KEY", value: cache.publicKey, secret: false },
    { name: "ATTIC_SUBSTITUTER", value: cache.substituter, secret: false },
    { name: "ATTIC_PULL_TOKEN", value: pullToken, secret: true },
    { name: "ATTIC_TOKEN", value: token, secret: true, push: true },
  ];
}

/**
 * Refuses a GitHub environment that does not exist or admits every branch: its secrets would reach
 * a job of any branch, a pull request's included.
 */
function requireProtectedEnvironment(repo: string, environment: string): void {
  const env = run("gh", ["api", `repos/${repo}/environments/${environment}`]);
  const create = `create it in ${repo}'s Settings → Environments with a deployment branch rule that admits only your default branch (Deployment branches: Selected branches and tags → main), then run ci-secrets again`;
  if (env.status !== 0)
    throw new UsageError(
      /HTTP 404|Not Found/i.test(env.stderr + env.stdout)
        ? `GitHub environment ${environment} does not exist: ${create}`
        : `gh could not read environment ${environment} of ${repo}: ${(env.stderr || env.stdout).trim()}`,
    );
  const policy = (JSON.parse(env.stdout) as { deployment_branch_policy?: unknown })
    .deployment_branch_policy as
    { protected_branches?: boolean; custom_branch_policies?: boolean } | null | undefined;
  if (!policy)
    throw new UsageError(
      `GitHub environment ${environment} admits every branch, so a pull request's job could read the push token: ${create}`,
    );
  if (policy.custom_branch_policies) {
    const list = run("gh", ["api", `repos/${repo}/environments/${environment}/deployment-branch-policies`]);
    if (list.status !== 0)
      throw new UsageError(
        `gh could not read the deployment branch rules of ${environment}: ${list.stderr.trim()}`,
      );
    const names = (
      (JSON.parse(list.stdout) as { branch_policies?: Array<{ name: string }> }).branch_policies ?? []
    ).map((p) => p.name);
    const wide = names.filter((n) => /^\*+$/.test(n));
    if (names.length === 0 || wide.length > 0)
      throw new UsageError(
        `GitHub environment ${environment}'s deployment branch rules (${names.join(", ") || "none"}) admit every branch: ${create}`,
      );
  }
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
  if (values.environment !== undefined && !values.github)
    throw new UsageError("--environment is for GitHub environments (with --github)");
  const environment = values.environment ?? PUSH_ENVIRONMENT;
  if (values.github && !/^[\w.-]+$/.test(environment))
    throw new UsageError(`--environment ${environment} is not a GitHub environment name`);
  const dryRun = values["dry-run"] ?? false;

  const outputs = readOutputs(values);
  const choice: { site?: string; cache?: string; token?: string } = {};
  if (values.site) choice.site = values.site;
  if (values.cache) choice.cache = values.cache;
  if (values.token) choice.token = values.token;
  const settings = settingsFrom(outputs, choice);

  const target = values.github ? `GitHub ${values.github}` : `GitLab ${values.gitlab}`;
  const kind = (s: Setting) =>
    values.github
      ? s.push
        ? `secret of environment ${environment}`
        : s.secret
          ? "repository secret"
          : "repository variable"
      : s.push
        ? "masked, protected variable"
        : s.secret
          ? "masked variable"
          : "variable";
  if (dryRun) {
    process.stdout.write(`would set on ${target}:\n`);
    for (const s of settings) process.stdout.write(`  ${s.name} (${kind(s)})\n`);
    return 0;
  }

  if (values.github) {
    requireCli("gh");
    requireProtectedEnvironment(values.github, environment);
    for (const s of settings) {
      const scope = ["--repo", values.github, ...(s.push ? ["--env", environment] : [])];
      const r = run("gh", [s.secret ? "secret" : "variable", "set", s.name, ...scope], s.value);
      if (r.status !== 0)
        throw new UsageError(`gh could not set ${s.name} on ${values.github}: ${r.stderr.trim()}`);
      process.stdout.write(`set ${s.name} (${kind(s)}) on ${target}\n`);
    }
  } else {
    requireCli("glab");
    for (const s of settings) {
      const flags = [
        "--repo",
        values.gitlab!,
        ...(s.secret ? ["--masked"] : []),
        ...(s.push ? ["--protected"] : []),
      ];
      let r = run("glab", ["variable", "set", s.name, ...flags], s.value);
      if (r.status !== 0 && /already been taken|already exists/i.test(r.stderr)) {
        r = run("glab", ["variable", "update", s.name, ...flags], s.value);
      }
      if (r.status !== 0)
        throw new UsageError(`glab could not set ${s.name} on ${values.gitlab}: ${r.stderr.trim()}`);
      process.stdout.write(`set ${s.name} (${kind(s)}) on ${target}\n`);
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
