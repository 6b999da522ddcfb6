/**
 * `npm run cost`: the itemized monthly estimate of what a synthesized stack creates. Asserted on the
 * dev example and on a stack that shares existing infrastructure (test/fixtures/Pulumi.shared.yaml),
 * one program run each; the command itself runs once, as the pull request workflow runs it.
 * What this proves: which items are priced, with which quantities, at the prices in
 * ci/cost/aws-prices.json. What it does not: that those prices are current (their date is in the file).
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { costCommand } from "../ci/commands/cost/cli";
import { type CostLine, estimate, renderMarkdown, runsPerMonth } from "../ci/commands/cost/estimate";
import { RDS_POSTGRES_VERSIONS } from "../config/schema";
import { type SynthResult, synth } from "../ci/commands/synth/harness";
import { readStackFile } from "../ci/commands/synth/stackFile";
import { ROOT, synthExample } from "./support/stacks";

const SHARED = path.join(ROOT, "test", "fixtures", "Pulumi.shared.yaml");
const TODAY = new Date("2026-11-27T12:00:00Z");
const calendar = RDS_POSTGRES_VERSIONS;

let dev: SynthResult;
let shared: SynthResult;
beforeAll(async () => {
  dev = await synthExample("dev");
  const { config } = readStackFile(SHARED, "attic-infra");
  shared = await synth({ stack: "shared", config });
});

const item = (lines: CostLine[], pattern: RegExp) => lines.filter((l) => pattern.test(l.item));
const docsSection = (name: string) => {
  const docs = readFileSync(path.join(ROOT, "docs", "aws.md"), "utf8");
  const m = new RegExp(`<!-- cost:${name} -->\\n([\\s\\S]*?)\\n<!-- /cost:${name} -->`).exec(docs);
  if (!m) throw new Error(`docs/aws.md has no cost:${name} section`);
  return m[1];
};

describe("the dev example", () => {
  it("costs at most $68 a month at the default assumptions", () => {
    const e = estimate(dev.resources, { stack: "dev", region: "us-east-1", calendar, today: TODAY });
    expect(e.total).toBeLessThanOrEqual(68);
    expect(e.total).toBeGreaterThan(60);
    expect(e.warnings).toEqual([]);
  });

  it("prices each billable thing the stack creates, one line each, quantity × unit price", () => {
    const { lines } = estimate(dev.resources, { stack: "dev", region: "us-east-1", calendar, today: TODAY });
    expect(item(lines, /^ALB hours$/)).toEqual([
      { item: "ALB hours", quantity: 730, unit: "h", unitPrice: 0.0225, monthly: 730 * 0.0225 },
    ]);
    expect(item(lines, /^Public IPv4: ALB \(2 AZs\)$/)[0]!.quantity).toBe(1460);
    expect(item(lines, /^Fargate api tasks \(1, the minimum\), ARM64, 0.5 vCPU \/ 1 GB$/)[0]).toMatchObject({
      quantity: 730,
      unitPrice: 0.5 * 0.03238 + 0.00356,
    });
    expect(item(lines, /^RDS db\.t4g\.micro, single-AZ$/)[0]!.monthly).toBeCloseTo(11.68, 2);
    expect(item(lines, /^RDS gp3 storage/)[0]!.quantity).toBe(20);
    // Six alarms before issue 22, then RDS FreeableMemory and the GC schedule's dropped invocations.
    expect(item(lines, /^CloudWatch alarms \(8 alarms\)$/)[0]!.quantity).toBe(12);
    // The failed GC task and the failed deployment are AWS events: counted, and free.
    expect(item(lines, /^EventBridge rules on AWS service events \(2\)$/)).toEqual([
      {
        item: "EventBridge rules on AWS service events (2)",
        quantity: 2,
        unit: "rules",
        unitPrice: 0,
        monthly: 0,
      },
    ]);
    expect(item(lines, /^Secrets Manager secrets$/)[0]!.quantity).toBe(1);
    expect(item(lines, /Container Insights|NAT|Extended Support/)).toEqual([]);
    for (const l of lines) expect(l.monthly).toBeCloseTo(l.quantity * l.unitPrice, 10);
  });

  it("usage assumptions change only their lines", () => {
    const base = estimate(dev.resources, { stack: "dev", region: "us-east-1", calendar, today: TODAY });
    const more = estimate(dev.resources, {
      stack: "dev",
      region: "us-east-1",
      calendar,
      today: TODAY,
      assumptions: { gbOut: 100, s3Gb: 200 },
    });
    expect(more.total - base.total).toBeCloseTo(100 * 0.09 + 100 * 0.023, 6);
  });

  it("Container Insights, an unsupported PostgreSQL and another region show up", () => {
    const resources = structuredClone(dev.resources);
    const cluster = resources.find((r) => r.type === "aws:ecs/cluster:Cluster")!;
    cluster.inputs.settings = [{ name: "containerInsights", value: "enabled" }];
    resources.find((r) => r.type === "aws:rds/instance:Instance")!.inputs.engineVersion = "13";
    const e = estimate(resources, { stack: "dev", region: "eu-central-1", calendar, today: TODAY });
    expect(item(e.lines, /^Container Insights/)[0]!.monthly).toBeCloseTo(31 * 0.3, 6);
    expect(item(e.lines, /^RDS Extended Support, PostgreSQL 13 \(2 vCPU\)$/)[0]!.monthly).toBeCloseTo(146, 6);
    expect(e.warnings).toEqual([
      expect.stringMatching(/deploys to eu-central-1; these are us-east-1 list prices/),
    ]);
  });

  it("GC runs follow the schedule's rate", () => {
    expect(runsPerMonth("rate(12 hours)")).toBeCloseTo(60.83, 2);
    expect(runsPerMonth("rate(1 day)")).toBeCloseTo(30.42, 2);
  });

  it("docs/aws.md's dev table is the command's output", () => {
    const e = estimate(dev.resources, { stack: "dev", region: "us-east-1", calendar, today: new Date() });
    expect(docsSection("dev")).toBe(renderMarkdown(e));
  });
});

describe("a stack on shared infrastructure", () => {
  const options = { stack: "shared", region: "us-east-1", calendar, today: TODAY };

  it("costs at most $15 a month (0.25 vCPU, 0.1 LCU, no data out)", () => {
    const e = estimate(shared.resources, { ...options, assumptions: { lcu: 0.1, gbOut: 0 } });
    expect(e.total).toBeLessThanOrEqual(15);
  });

  it("pays for no ALB, database, cluster, NAT gateway, public IP or Container Insights of its own", () => {
    const { lines } = estimate(shared.resources, { ...options, assumptions: { lcu: 0.1 } });
    expect(item(lines, /^ALB hours|^RDS|Public IPv4|NAT gateway hours|Container Insights|Secrets/)).toEqual(
      [],
    );
    expect(item(lines, /^Shared ALB capacity this service adds \(0.1 LCU\)$/)[0]!.quantity).toBeCloseTo(
      73,
      6,
    );
    expect(item(lines, /^NAT data processing \(the VPC's own NAT\)$/)).toHaveLength(1);
  });

  it("its tasks run in the VPC's private subnets without public IPs", () => {
    const svc = shared.resources.find(
      (r) => r.type === "aws:ecs/service:Service" && r.name === "aws-ecs-api",
    )!;
    expect(svc.inputs.networkConfiguration).toMatchObject({
      subnets: ["subnet-0ccc3333", "subnet-0ddd4444"],
      assignPublicIp: false,
    });
  });

  it("`npm run cost -- --config … --markdown` prints docs/aws.md's shared table", async () => {
    const out = { stdout: "", stderr: "" };
    const code = await costCommand(["--config", SHARED, "--lcu", "0.1", "--gb-out", "0", "--markdown"], {
      stdout: (t) => (out.stdout += t),
      stderr: (t) => (out.stderr += t),
    });
    expect(out.stderr).toBe("");
    expect(code).toBe(0);
    expect(out.stdout.trimEnd()).toBe(docsSection("shared"));
  });

  it("a flag that is not a number is refused, naming the flag", async () => {
    let stderr = "";
    const code = await costCommand(["--stack", "dev", "--lcu", "lots"], {
      stdout: () => undefined,
      stderr: (t) => (stderr += t),
    });
    expect(code).toBe(1);
    expect(stderr).toBe('--lcu: "lots" is not a non-negative number\n');
  });

  it("an unknown --stack is refused, listing the stacks there are", async () => {
    let stderr = "";
    const code = await costCommand(["--stack", "prod"], {
      stdout: () => undefined,
      stderr: (t) => (stderr += t),
    });
    expect(code).toBe(1);
    expect(stderr).toBe(
      "there is no Pulumi.prod.yaml; stacks here: dev, office, vps (or give --config <file>)\n",
    );
  });
});

describe("the pull request workflow", () => {
  it("writes each stack's cost estimate to the job summary", () => {
    const pr = parseYaml(readFileSync(path.join(ROOT, ".github/workflows/pull-request.yml"), "utf8"));
    const step = pr.jobs.synth.steps.find((s: { run?: string }) => s.run?.includes("npm run --silent cost"));
    expect(step.run).toContain('--stack "${{ matrix.stack }}" --markdown');
    expect(step.run).toContain('>> "$GITHUB_STEP_SUMMARY"');
  });
});
