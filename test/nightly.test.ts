/**
 * The nightly drift and health check: .github/workflows/nightly.yml (one job per stack, each naming
 * the runner that reaches it) and ci/commands/nightly/check.sh, run with recording stand-ins for
 * pulumi and npm. Proven: which runner checks which stack, when a stack is skipped and that it says
 * why; that drift (exit 7), a failed preview and a failed verify each fail the job with their own
 * sentence, and that verify's --json lands in the job summary as is. Not proven: GitHub's scheduler,
 * a real Pulumi CLI (exit 7 needs 3.226 or newer; the workflow pins 3.270.0).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { beforeEach, describe, expect, it } from "vitest";
import { githubExpression } from "./support/ciReach";
import { ROOT } from "./support/stacks";

type Job = {
  name: string;
  if?: string;
  "runs-on": string | { group: string };
  permissions: Record<string, string>;
  steps: Array<{ uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string> }>;
};
const nightly = parseYaml(readFileSync(path.join(ROOT, ".github/workflows/nightly.yml"), "utf8")) as {
  on: Record<string, unknown>;
  permissions: object;
  jobs: Record<string, Job>;
};
const STACKS = readdirSync(ROOT)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => s !== undefined)
  .sort();
const checkStep = (job: Job) => job.steps.find((s) => s.run?.startsWith("ci/commands/nightly/check.sh"));
const runs = (job: Job, vars: Record<string, string>) =>
  job.if === undefined ||
  githubExpression(job.if, { vars, github: { event_name: "schedule" }, secrets: {}, inputs: {} }) === true;

describe("the nightly workflow", () => {
  it("runs every night and on demand, granting nothing by default", () => {
    expect(Object.keys(nightly.on).sort()).toEqual(["schedule", "workflow_dispatch"]);
    expect(nightly.permissions).toEqual({});
  });

  it("checks every stack of the repository, each job naming its runner", () => {
    const checked = Object.values(nightly.jobs)
      .map((j) => checkStep(j)?.run?.split(" ")[1])
      .filter(Boolean)
      .sort();
    expect(STACKS).toEqual(["dev", "office", "vps"]);
    expect(checked).toEqual(STACKS);
    expect(
      Object.fromEntries(Object.entries(nightly.jobs).map(([k, j]) => [k, [j.name, j["runs-on"]]])),
    ).toEqual({
      dev: ["dev (runner: GitHub-hosted ubuntu-24.04)", "ubuntu-24.04"],
      office: ["office (runner: self-hosted group office, on the office LAN)", { group: "office" }],
      vps: [
        "vps (runner: group vars.NIGHTLY_VPS_RUNNER_GROUP, inside vps.sshFrom)",
        { group: "${{ vars.NIGHTLY_VPS_RUNNER_GROUP }}" },
      ],
      "vps-skipped": ["vps (skipped: no runner reaches its host)", "ubuntu-24.04"],
    });
  });

  it("without a runner for the vps, skips it and says why in the summary; with one, checks it there", () => {
    const { vps, "vps-skipped": skipped } = nightly.jobs;
    expect([runs(vps!, {}), runs(skipped!, {})]).toEqual([false, true]);
    expect([
      runs(vps!, { NIGHTLY_VPS_RUNNER_GROUP: "vps-deployers" }),
      runs(skipped!, { NIGHTLY_VPS_RUNNER_GROUP: "vps-deployers" }),
    ]).toEqual([true, false]);
    expect(skipped!.steps[0]!.run).toContain('>> "$GITHUB_STEP_SUMMARY"');
    expect(skipped!.steps[0]!.run).toContain("set the repository variable NIGHTLY_VPS_RUNNER_GROUP");
  });

  it("each stack job installs a Pulumi CLI that tells drift from errors, and has the backend and passphrase", () => {
    for (const [name, job] of Object.entries(nightly.jobs)) {
      const step = checkStep(job);
      if (!step) continue;
      const install = job.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
      expect(install?.with, name).toEqual({ "pulumi-version": "3.270.0" });
      expect(step.env, name).toEqual({
        PULUMI_BACKEND_URL: "${{ vars.PULUMI_BACKEND_URL }}",
        PULUMI_CONFIG_PASSPHRASE: "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}",
      });
      // Only dev reaches AWS: the read-only preview role through OIDC.
      expect(job.permissions, name).toEqual(
        name === "dev" ? { contents: "read", "id-token": "write" } : { contents: "read" },
      );
    }
    const aws = nightly.jobs.dev!.steps.find((s) => s.uses?.startsWith("aws-actions/"));
    expect(aws?.with?.["role-to-assume"]).toBe("${{ vars.AWS_PREVIEW_ROLE_ARN }}");
  });
});

describe("ci/commands/nightly/check.sh", () => {
  let dir: string;
  const VERIFY_JSON =
    '{\n  "checks": [{"site":"aws","check":"clock","status":"pass","detail":"ok"}],\n  "summary": {"pass":1,"fail":0,"warn":0,"skip":0}\n}\n';
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "nightly-"));
    spawnSync("mkdir", ["-p", path.join(dir, "bin")]);
    writeFileSync(path.join(dir, "calls.log"), "");
  });
  const standIn = (name: string, body: string) => {
    writeFileSync(
      path.join(dir, "bin", name),
      `#!/bin/sh\nprintf '%s\\n' "${name} $*" >> "$STANDIN_DIR/calls.log"\n${body}\n`,
    );
    chmodSync(path.join(dir, "bin", name), 0o755);
  };
  /** pulumi preview prints a diff and exits `preview`; npm run verify prints `json` and exits `verify`. */
  function check(preview: number, verify: number, json = VERIFY_JSON) {
    standIn(
      "pulumi",
      `echo "~ aws:scheduler/schedule:Schedule aws-ecs-gc update [diff: ~state]"\nexit ${preview}`,
    );
    writeFileSync(path.join(dir, "verify.json"), json);
    standIn("npm", `cat "$STANDIN_DIR/verify.json"\nexit ${verify}`);
    const summary = path.join(dir, "summary.md");
    const r = spawnSync("bash", [path.join(ROOT, "ci/commands/nightly/check.sh"), "dev"], {
      cwd: dir,
      encoding: "utf8",
      env: { PATH: `${path.join(dir, "bin")}:/usr/bin:/bin`, STANDIN_DIR: dir, GITHUB_STEP_SUMMARY: summary },
    });
    let text = "";
    try {
      text = readFileSync(summary, "utf8");
    } catch {
      // No summary written.
    }
    return {
      status: r.status,
      summary: text,
      calls: readFileSync(path.join(dir, "calls.log"), "utf8").trim().split("\n"),
    };
  }

  it("runs the refreshed preview that expects no changes, then verify --json, and passes when both do", () => {
    const r = check(0, 0);
    expect(r.status).toBe(0);
    expect(r.calls).toEqual([
      "pulumi preview --stack dev --refresh --expect-no-changes --diff --non-interactive --policy-pack policy",
      "npm run --silent verify -- --stack dev --json",
    ]);
    expect(r.summary).toContain("## Stack `dev`");
    expect(r.summary).toContain("**Drift: none.**");
    expect(r.summary).toContain("**Health: verify passed**");
    // verify's --json, as it printed it.
    expect(r.summary).toContain("```json\n" + VERIFY_JSON + "```\n");
  });

  it("drift (exit 7) fails the job with the diff; verify still runs", () => {
    const r = check(7, 0);
    expect(r.status).toBe(1);
    expect(r.summary).toContain("**Drift: yes.**");
    expect(r.summary).toContain("~ aws:scheduler/schedule:Schedule aws-ecs-gc update [diff: ~state]");
    expect(r.calls).toHaveLength(2);
  });

  it("a failed preview is reported as a failure, not as drift", () => {
    const r = check(1, 0);
    expect(r.status).toBe(1);
    expect(r.summary).toContain("**Drift: unknown: the preview failed** (exit 1; 7 would mean drift)");
    expect(r.summary).not.toContain("**Drift: yes.**");
  });

  it("a failed verify check fails the job, its JSON in the summary", () => {
    const failing = VERIFY_JSON.replace('"status":"pass"', '"status":"fail"');
    const r = check(0, 1, failing);
    expect(r.status).toBe(1);
    expect(r.summary).toContain("**Health: verify failed:**");
    expect(r.summary).toContain(failing);
  });

  it("--help explains itself; no stack is a usage error", () => {
    const help = spawnSync("bash", [path.join(ROOT, "ci/commands/nightly/check.sh"), "--help"], {
      encoding: "utf8",
    });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: check\.sh STACK/);
    expect(spawnSync("bash", [path.join(ROOT, "ci/commands/nightly/check.sh")]).status).toBe(2);
  });
});
