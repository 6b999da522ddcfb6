/**
 * The CI templates a Nix project copies (ci/nix-project/github, ci/nix-project/gitlab) cannot
 * poison the cache: no step that pushes is reachable from a pull or merge request, the push token
 * reaches no job a pull request can run, GitLab pushes in `script` (not `after_script`), pull
 * requests cancel superseded runs and the default branch never does, and the attic client is
 * pinned to a nixpkgs revision. Each rule is evaluated on the parsed template (test/support/ciReach.ts
 * evaluates `on:`, `if:` and `rules:`), and each is shown to fail on a copy that breaks it.
 * Not proven: GitHub's and GitLab's own evaluation (not here); the environment's branch rule and the
 * variable's protection, which live in the repository's settings (ci-secrets checks the first).
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import {
  type GithubEvent,
  type GithubJob,
  type GitlabVariables,
  githubExpression,
  githubReachableSteps,
  gitlabJobRuns,
  gitlabJobs,
} from "./support/ciReach";
import { ROOT } from "./support/stacks";

const GITHUB = "ci/nix-project/github/nix-cache.yml";
const GITLAB = "ci/nix-project/gitlab/nix-cache.gitlab-ci.yml";
const read = (file: string) => readFileSync(path.join(ROOT, file), "utf8");

/** A command that pushes to the cache. */
const PUSHES = /(^|[\s/"'])push\.sh\b|\battic\s+push\b/;
/** The attic client from a pinned nixpkgs revision. */
const PINNED = /^github:NixOS\/nixpkgs\/[0-9a-f]{40}#attic-client$/;

const githubEvent = (name: string, branch: string, ref: string): GithubEvent => ({
  name,
  branch,
  context: {
    github: {
      event_name: name,
      ref,
      head_ref: name.startsWith("pull_request") ? "feature" : "",
      base_ref: name.startsWith("pull_request") ? branch : "",
      event: { repository: { default_branch: "main" } },
    },
    vars: {},
    secrets: {},
    env: {},
    inputs: {},
    matrix: { check: "default" },
    runner: {},
    job: {},
    steps: {},
    needs: {},
    strategy: {},
  },
});
/** Events code from a pull request can start (pull_request_target runs with the base's ref). */
const PR_EVENTS = [
  githubEvent("pull_request", "main", "refs/pull/7/merge"),
  githubEvent("pull_request_target", "main", "refs/heads/main"),
];
const PUSH_TO_DEFAULT = githubEvent("push", "main", "refs/heads/main");
const PUSH_TO_BRANCH = githubEvent("push", "feature", "refs/heads/feature");

type Workflow = {
  on: unknown;
  env?: Record<string, string>;
  concurrency?: { "cancel-in-progress"?: unknown };
  jobs: Record<string, GithubJob & { env?: Record<string, string> }>;
};

/** Every way the GitHub template could let a pull request push; empty when none. */
function githubViolations(text: string): string[] {
  const w = parseYaml(text) as Workflow;
  const found: string[] = [];
  const pushing = (e: GithubEvent) =>
    githubReachableSteps(w, e).filter(({ step }) => PUSHES.test(step.run ?? ""));
  for (const e of [...PR_EVENTS, PUSH_TO_BRANCH])
    for (const { job, step } of pushing(e))
      found.push(`${e.name} ${e.branch}: job ${job} runs the push step "${step.name ?? step.run}"`);
  if (pushing(PUSH_TO_DEFAULT).length === 0) found.push("nothing pushes on a push to the default branch");
  // The push token: only in the job that pushes, from its environment.
  const usesPushToken = (o: unknown) => /secrets\.ATTIC_TOKEN\b/.test(JSON.stringify(o ?? {}));
  if (usesPushToken(w.env)) found.push("the workflow's env hands every job the push token");
  for (const e of PR_EVENTS) {
    for (const { job } of githubReachableSteps(w, e)) {
      if (usesPushToken(w.jobs[job])) found.push(`${e.name}: job ${job} holds secrets.ATTIC_TOKEN`);
    }
  }
  for (const [name, job] of Object.entries(w.jobs)) {
    const env = typeof job.environment === "string" ? job.environment : job.environment?.name;
    if (usesPushToken(job) && env !== "attic-push")
      found.push(`job ${name} reads secrets.ATTIC_TOKEN outside the environment attic-push`);
  }
  const cancel = w.concurrency?.["cancel-in-progress"];
  const cancels = (e: GithubEvent) =>
    typeof cancel === "string" ? githubExpression(cancel, e.context) === true : cancel === true;
  if (cancels(PUSH_TO_DEFAULT)) found.push("cancel-in-progress cancels runs of the default branch");
  if (!cancels(PR_EVENTS[0]!)) found.push("cancel-in-progress does not cancel superseded pull request runs");
  return [...new Set(found)];
}

const gitlabVars = (v: GitlabVariables): GitlabVariables => ({ CI_DEFAULT_BRANCH: "main", ...v });
const MR_PIPELINES = [
  gitlabVars({
    CI_PIPELINE_SOURCE: "merge_request_event",
    CI_MERGE_REQUEST_IID: "7",
    CI_COMMIT_REF_NAME: "feature",
  }),
  gitlabVars({ CI_PIPELINE_SOURCE: "external_pull_request_event", CI_COMMIT_REF_NAME: "feature" }),
  gitlabVars({ CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "feature", CI_COMMIT_REF_NAME: "feature" }),
];
const DEFAULT_BRANCH_PUSH = gitlabVars({
  CI_PIPELINE_SOURCE: "push",
  CI_COMMIT_BRANCH: "main",
  CI_COMMIT_REF_NAME: "main",
});

const lines = (v: unknown): string[] =>
  Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)];

/** Every way the GitLab template could let a merge request push, or push where it may not count. */
function gitlabViolations(text: string): string[] {
  const file = parseYaml(text) as Record<string, unknown>;
  const found: string[] = [];
  // after_script anywhere: a job, a hidden template, `default:`, the top level.
  const blocks: Array<[string, unknown]> = [["(top level)", file], ...Object.entries(file)];
  for (const [name, block] of blocks)
    if (block && typeof block === "object")
      for (const cmd of lines((block as Record<string, unknown>).after_script))
        if (PUSHES.test(cmd))
          found.push(`${name}: pushes in after_script (5-minute cap, failures ignored): ${cmd}`);
  const jobs = gitlabJobs(file);
  const pushes = (job: Record<string, unknown>) =>
    [...lines(job.before_script), ...lines(job.script)].some((c) => PUSHES.test(c));
  for (const vars of MR_PIPELINES)
    for (const [name, job] of Object.entries(jobs))
      if (pushes(job) && gitlabJobRuns(job, vars))
        found.push(`${vars.CI_PIPELINE_SOURCE} ${vars.CI_COMMIT_REF_NAME}: job ${name} pushes`);
  if (!Object.values(jobs).some((j) => pushes(j) && gitlabJobRuns(j, DEFAULT_BRANCH_PUSH)))
    found.push("nothing pushes in a default-branch pipeline");
  return found;
}

/** Each attic-client install that is not from a pinned nixpkgs revision. */
function unpinnedAtticClient(text: string): string[] {
  const installs = [...text.matchAll(/nix (?:profile (?:install|add)|shell|run)\s+([^\n]*)/g)].filter((m) =>
    /attic/.test(m[1]!),
  );
  const bad = installs
    .filter((m) => !m[1]!.split(/\s+/).some((arg) => PINNED.test(arg.replace(/^["']|["']$/g, ""))))
    .map((m) => m[0].trim());
  if (installs.length === 0) bad.push("(no attic-client install found)");
  return bad;
}

describe("the GitHub template", () => {
  const text = read(GITHUB);

  it("pushes only on a push to the default branch, with the environment's token; pull requests cancel, main never", () => {
    expect(githubViolations(text)).toEqual([]);
    const w = parseYaml(text) as Workflow;
    expect(w.jobs["checks-and-push"]!.environment).toBe("attic-push");
    expect(w.jobs["checks-and-push"]!.env!.ATTIC_TOKEN).toBe("${{ secrets.ATTIC_TOKEN }}");
    expect(w.jobs.checks!.env!.ATTIC_PULL_TOKEN).toBe("${{ secrets.ATTIC_PULL_TOKEN }}");
  });

  it("both jobs build the same way (only the push and the token differ)", () => {
    const w = parseYaml(text) as Workflow;
    const build = (job: string) =>
      w.jobs[job]!.steps!.filter((s) => !PUSHES.test(s.run ?? "")).map((s) => s.uses ?? s.run);
    expect(build("checks")).toEqual(build("checks-and-push"));
  });

  it("fails on a push step reachable from a pull request", () => {
    const w = parseYaml(text) as Workflow;
    const unguarded = structuredClone(w);
    delete unguarded.jobs["checks-and-push"]!.if;
    expect(githubViolations(JSON.stringify(unguarded))).toContain(
      'pull_request main: job checks-and-push runs the push step "Push results to the cache"',
    );
    // A ref check alone is not enough: pull_request_target runs with the base branch's ref.
    const refOnly = structuredClone(w);
    refOnly.on = { ...(refOnly.on as object), pull_request_target: null };
    refOnly.jobs["checks-and-push"]!.if = "github.ref == 'refs/heads/main'";
    expect(githubViolations(JSON.stringify(refOnly))).toContain(
      'pull_request_target main: job checks-and-push runs the push step "Push results to the cache"',
    );
    const pushInPr = structuredClone(w);
    pushInPr.jobs.checks!.steps!.push({ name: "push", run: 'ci/attic/push.sh "result-x"' });
    expect(githubViolations(JSON.stringify(pushInPr))).toContain(
      'pull_request main: job checks runs the push step "push"',
    );
  });

  it("fails when a pull request's job could read the push token, or main's runs get cancelled", () => {
    const w = parseYaml(text) as Workflow;
    const global = structuredClone(w);
    global.env = { ATTIC_TOKEN: "${{ secrets.ATTIC_TOKEN }}" };
    expect(githubViolations(JSON.stringify(global))).toContain(
      "the workflow's env hands every job the push token",
    );
    const noEnvironment = structuredClone(w);
    delete noEnvironment.jobs["checks-and-push"]!.environment;
    expect(githubViolations(JSON.stringify(noEnvironment))).toContain(
      "job checks-and-push reads secrets.ATTIC_TOKEN outside the environment attic-push",
    );
    const prToken = structuredClone(w);
    prToken.jobs.checks!.env!.ATTIC_TOKEN = "${{ secrets.ATTIC_TOKEN }}";
    expect(githubViolations(JSON.stringify(prToken))).toContain(
      "pull_request: job checks holds secrets.ATTIC_TOKEN",
    );
    const cancelAll = structuredClone(w);
    cancelAll.concurrency = { "cancel-in-progress": true };
    expect(githubViolations(JSON.stringify(cancelAll))).toContain(
      "cancel-in-progress cancels runs of the default branch",
    );
  });
});

describe("the GitLab template", () => {
  const text = read(GITLAB);

  it("pushes only in script, in the default branch's pipeline; never in a merge request or another branch", () => {
    expect(gitlabViolations(text)).toEqual([]);
  });

  it("fails on a push in after_script, or a push job that merge requests or other branches run", () => {
    const file = parseYaml(text) as Record<string, Record<string, unknown>>;
    const after = structuredClone(file);
    after[".attic-nix-check"]!.after_script = ['ci/attic/push.sh "result-$CHECK"', "ci/attic/report.sh"];
    expect(gitlabViolations(JSON.stringify(after))).toContain(
      '.attic-nix-check: pushes in after_script (5-minute cap, failures ignored): ci/attic/push.sh "result-$CHECK"',
    );
    const mr = structuredClone(file);
    mr["nix-checks-push"]!.rules = [
      { if: '$CI_PIPELINE_SOURCE == "merge_request_event"' },
      ...(mr["nix-checks-push"]!.rules as object[]),
    ];
    expect(gitlabViolations(JSON.stringify(mr))).toContain(
      "merge_request_event feature: job nix-checks-push pushes",
    );
    const anyBranch = structuredClone(file);
    anyBranch["nix-checks-push"]!.rules = [{ if: '$CI_PIPELINE_SOURCE == "push"' }];
    expect(gitlabViolations(JSON.stringify(anyBranch))).toContain("push feature: job nix-checks-push pushes");
    const noRules = structuredClone(file);
    delete noRules["nix-checks-push"]!.rules;
    expect(gitlabViolations(JSON.stringify(noRules))).toContain(
      "merge_request_event feature: job nix-checks-push pushes",
    );
  });

  it("the merge request job runs in merge requests, and never pushes", () => {
    const jobs = gitlabJobs(parseYaml(text) as Record<string, unknown>);
    expect(gitlabJobRuns(jobs["nix-checks"]!, MR_PIPELINES[0]!)).toBe(true);
    expect(gitlabJobRuns(jobs["nix-checks"]!, DEFAULT_BRANCH_PUSH)).toBe(false);
    expect(lines(jobs["nix-checks"]!.script).some((c) => PUSHES.test(c))).toBe(false);
  });
});

describe("the attic client is pinned", () => {
  it.each([GITHUB, GITLAB])("%s installs it from a nixpkgs revision", (file) => {
    expect(unpinnedAtticClient(read(file))).toEqual([]);
  });

  it("both templates pin the same revision", () => {
    const rev = (file: string) =>
      [...read(file).matchAll(/github:NixOS\/nixpkgs\/([0-9a-f]{40})#attic-client/g)].map((m) => m[1]);
    expect(new Set([...rev(GITHUB), ...rev(GITLAB)]).size).toBe(1);
  });

  it("fails on an unpinned install (a channel, a branch, a short revision)", () => {
    for (const ref of [
      "nixpkgs#attic-client",
      "github:NixOS/nixpkgs/nixos-unstable#attic-client",
      "github:NixOS/nixpkgs/01f01ea#attic-client",
    ])
      expect(unpinnedAtticClient(`run: nix profile install "${ref}"`), ref).toEqual([
        `nix profile install "${ref}"`,
      ]);
  });
});

describe("the evaluators the rules rest on (test/support/ciReach.ts)", () => {
  it("GitHub: contexts, format(), ==, &&, || and !, case-insensitive strings; unknown names throw", () => {
    const ctx = PUSH_TO_DEFAULT.context;
    expect(
      githubExpression(
        "${{ github.ref == format('refs/heads/{0}', github.event.repository.default_branch) }}",
        ctx,
      ),
    ).toBe(true);
    expect(githubExpression("github.event_name == 'PUSH' && !(github.ref == 'x')", ctx)).toBe(true);
    expect(githubExpression("github.event_name == 'pull_request' || github.head_ref", ctx)).toBe("");
    // Different types compare as numbers: an unset variable (null) equals ''.
    expect(githubExpression("vars.UNSET == ''", { ...ctx, vars: {} })).toBe(true);
    expect(githubExpression("vars.UNSET != ''", { ...ctx, vars: {} })).toBe(false);
    expect(() => githubExpression("nope.x == 1", ctx)).toThrow(/unknown context nope/);
    expect(() => githubExpression("fromJSON('1')", ctx)).toThrow(/unknown function fromJSON/);
  });

  it("GitLab: unset variables are null, the first matching rule decides, when: never excludes", () => {
    const vars = MR_PIPELINES[0]!;
    expect(gitlabJobRuns({ rules: [{ if: "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" }] }, vars)).toBe(false);
    expect(
      gitlabJobRuns({ rules: [{ if: "$CI_PIPELINE_SOURCE =~ /^merge/", when: "never" }, {}] }, vars),
    ).toBe(false);
    expect(
      gitlabJobRuns({ rules: [{ if: '$CI_MERGE_REQUEST_IID && $CI_PIPELINE_SOURCE != "push"' }] }, vars),
    ).toBe(true);
    expect(() => gitlabJobRuns({ rules: [{ changes: ["x"] }] }, vars)).toThrow(/not modelled/);
  });
});
