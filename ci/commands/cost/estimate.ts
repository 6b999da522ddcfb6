/**
 * A monthly cost estimate of what a synthesized stack creates: one line per billable item, with
 * quantity, unit price and monthly cost, at the list prices in ci/commands/cost/aws-prices.json (us-east-1).
 * Usage the program cannot know (traffic, stored GB, log volume) comes from `Assumptions`.
 *
 * It reads only the resources the program registers (the offline synth's output), so what it prices is what
 * `pulumi up` would create — nothing a design note hopes for. Shared infrastructure the stack adopts
 * (an existing ALB, database, cluster, NAT) is priced only for the share this stack adds: LCUs on
 * the shared ALB, NAT data from tasks in the VPC's private subnets.
 *
 * Not priced: the free tier's account-wide allowances other than dashboards, Savings Plans, taxes,
 * and the Route53 hosted zone (yours, looked up, not created).
 */
import prices from "./aws-prices.json";
import type { SynthResource } from "../synth/harness";

export interface Assumptions {
  /**
   * Average ALB load-balancer capacity units this service uses. Every NAR larger than atticd's
   * `narSizeThreshold` streams through the ALB (and a task) on each download, so bytes processed
   * usually set the LCUs: 1 LCU is 1 GB an hour.
   */
  lcu: number;
  /** GB of chunks in S3 (Standard). */
  s3Gb: number;
  /** Thousands of S3 PUT/COPY/POST/LIST requests a month. */
  s3PutThousands: number;
  /** Thousands of S3 GET requests a month: one per chunk a download reads, redirected or streamed. */
  s3GetThousands: number;
  /** GB of logs ingested a month (each log group). */
  logGb: number;
  /** GB of ALB access logs stored. */
  albLogGb: number;
  /** Minutes one scheduled garbage-collection run takes. */
  gcMinutes: number;
  /**
   * GB a month sent to clients outside AWS: NARs streamed through the ALB (all but the single-chunk
   * ones, which redirect to S3 and leave from there), and API answers. Billed the same either way.
   */
  gbOut: number;
  /** GB a month through a NAT gateway (image pulls, AWS APIs without an endpoint). */
  natGb: number;
  /** Dashboards the account still has free (the first 3 per account are). */
  freeDashboards: number;
}

export const DEFAULT_ASSUMPTIONS: Assumptions = {
  lcu: 1,
  s3Gb: 100,
  s3PutThousands: 150,
  s3GetThousands: 1000,
  logGb: 1,
  albLogGb: 1,
  gcMinutes: 5,
  gbOut: 0,
  natGb: 2,
  freeDashboards: 3,
};

/** What each flag means, for `npm run cost -- --help`. */
export const ASSUMPTION_HELP: Record<keyof Assumptions, string> = {
  lcu: "ALB capacity units: every NAR above narSizeThreshold streams through the ALB (1 LCU = 1 GB/h processed)",
  s3Gb: "GB of chunks stored",
  s3PutThousands: "thousands of S3 PUT/COPY/POST/LIST requests (uploads write one PUT per chunk)",
  s3GetThousands: "thousands of S3 GETs (one per chunk a download reads)",
  logGb: "GB of task logs ingested",
  albLogGb: "GB of ALB access logs stored",
  gcMinutes: "minutes one scheduled GC run takes",
  gbOut:
    "GB a month to clients outside AWS: streamed NARs through the ALB, single-chunk ones redirected to S3 (same price)",
  natGb: "GB through a NAT gateway",
  freeDashboards: "CloudWatch dashboards still free in the account (3 per account)",
};

/** The command-line flag of each assumption (`npm run cost -- --s3-gb 250`). */
export const ASSUMPTION_FLAGS: Record<keyof Assumptions, string> = {
  lcu: "lcu",
  s3Gb: "s3-gb",
  s3PutThousands: "s3-put-k",
  s3GetThousands: "s3-get-k",
  logGb: "log-gb",
  albLogGb: "alb-log-gb",
  gcMinutes: "gc-minutes",
  gbOut: "gb-out",
  natGb: "nat-gb",
  freeDashboards: "free-dashboards",
};

export interface CostLine {
  item: string;
  quantity: number;
  unit: string;
  unitPrice: number;
  monthly: number;
}

export interface Estimate {
  stack: string;
  region: string;
  lines: CostLine[];
  total: number;
  warnings: string[];
  assumptions: Assumptions;
}

type PriceKey = keyof typeof prices.prices;
const PRICES = prices.prices as Record<string, { usd: number; per: string; vcpu?: number }>;
const price = (key: PriceKey) => PRICES[key]!.usd;
const HOURS = prices.hoursPerMonth;

/** RDS end of standard support per major version, to price Extended Support. */
export type SupportCalendar = Record<string, { endOfStandardSupport: string }>;

/** Runs a month of an EventBridge Scheduler rate expression makes (`rate(12 hours)` → 60.8). */
export function runsPerMonth(expression: string): number {
  const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!m) return 0;
  const minutes = Number(m[1]) * (m[2]!.startsWith("minute") ? 1 : m[2]!.startsWith("hour") ? 60 : 1440);
  return (HOURS * 60) / minutes;
}

export function estimate(
  resources: SynthResource[],
  options: {
    stack: string;
    region: string;
    assumptions?: Partial<Assumptions>;
    calendar: SupportCalendar;
    today: Date;
  },
): Estimate {
  const a: Assumptions = { ...DEFAULT_ASSUMPTIONS, ...options.assumptions };
  const lines: CostLine[] = [];
  const warnings: string[] = [];
  if (options.region !== prices.region)
    warnings.push(
      `the stack deploys to ${options.region}; these are ${prices.region} list prices (ci/commands/cost/aws-prices.json), other regions differ`,
    );
  const add = (item: string, quantity: number, unit: string, unitPrice: number) =>
    lines.push({ item, quantity, unit, unitPrice, monthly: quantity * unitPrice });
  const of = (type: string) => resources.filter((r) => r.custom && r.type === type);
  // The program names each service and schedule like the task definition it runs (components/aws/service.ts).
  const taskDefinition = (runner: SynthResource) =>
    resources.find((r) => r.type === "aws:ecs/taskDefinition:TaskDefinition" && r.name === runner.name);
  const fargate = (label: string, td: SynthResource, hours: number) => {
    const arch = ((td.inputs.runtimePlatform as { cpuArchitecture?: string })?.cpuArchitecture ??
      "X86_64") as "ARM64" | "X86_64";
    const vcpu = Number(td.inputs.cpu) / 1024;
    const gb = Number(td.inputs.memory) / 1024;
    const perHour = vcpu * price(`fargate.${arch}.vcpuHour`) + gb * price(`fargate.${arch}.gbHour`);
    add(`Fargate ${label}, ${arch}, ${vcpu} vCPU / ${gb} GB`, hours, "task-hours", perHour);
  };

  // Load balancing.
  const albs = of("aws:lb/loadBalancer:LoadBalancer");
  for (const alb of albs) {
    add("ALB hours", HOURS, "h", price("alb.hour"));
    if (alb.inputs.internal !== true) {
      const azs = (alb.inputs.subnets as unknown[] | undefined)?.length ?? 2;
      add(`Public IPv4: ALB (${azs} AZs)`, azs * HOURS, "IP-hours", price("ipv4.hour"));
    }
  }
  if (albs.length > 0 || of("aws:lb/listenerRule:ListenerRule").length > 0)
    add(
      albs.length > 0
        ? `ALB capacity (${a.lcu} LCU)`
        : `Shared ALB capacity this service adds (${a.lcu} LCU)`,
      a.lcu * HOURS,
      "LCU-hours",
      price("alb.lcuHour"),
    );

  // Compute.
  let privateTasks = false;
  for (const svc of of("aws:ecs/service:Service")) {
    const td = taskDefinition(svc);
    if (!td) {
      warnings.push(`${svc.name}: its task definition is not in the stack; not priced`);
      continue;
    }
    const count = Number(svc.inputs.desiredCount ?? 1);
    const role = svc.name.endsWith("-gc") ? "GC task (always on)" : `api tasks (${count}, the minimum)`;
    fargate(role, td, count * HOURS);
    const net = svc.inputs.networkConfiguration as { assignPublicIp?: boolean } | undefined;
    if (net?.assignPublicIp) add(`Public IPv4: ${role}`, count * HOURS, "IP-hours", price("ipv4.hour"));
    else privateTasks = true;
  }
  for (const schedule of of("aws:scheduler/schedule:Schedule")) {
    const target = schedule.inputs.target as {
      ecsParameters?: { networkConfiguration?: { assignPublicIp?: boolean } };
    };
    const td = taskDefinition(schedule);
    if (!td) continue;
    const runs = runsPerMonth(String(schedule.inputs.scheduleExpression));
    const hours = (runs * a.gcMinutes) / 60;
    fargate(`GC task (${runs.toFixed(0)} runs × ${a.gcMinutes} min)`, td, hours);
    if (target.ecsParameters?.networkConfiguration?.assignPublicIp)
      add("Public IPv4: GC task while it runs", hours, "IP-hours", price("ipv4.hour"));
  }
  for (const cluster of of("aws:ecs/cluster:Cluster")) {
    const settings = (cluster.inputs.settings as Array<{ name: string; value: string }> | undefined) ?? [];
    if (settings.some((s) => s.name === "containerInsights" && s.value === "enabled"))
      add(
        "Container Insights metrics (estimate)",
        prices.containerInsightsMetrics,
        "metrics",
        price("cloudwatch.customMetric"),
      );
  }

  // Database.
  for (const db of of("aws:rds/instance:Instance")) {
    const cls = String(db.inputs.instanceClass);
    const entry = PRICES[`rds.postgres.${cls}`];
    const copies = db.inputs.multiAz === true ? 2 : 1;
    const az = copies === 2 ? "Multi-AZ" : "single-AZ";
    if (!entry)
      warnings.push(
        `no price for RDS ${cls} in ci/commands/cost/aws-prices.json; its instance hours are not counted`,
      );
    else add(`RDS ${cls}, ${az}`, copies * HOURS, "instance-hours", entry.usd);
    add(
      `RDS gp3 storage, ${az}`,
      copies * Number(db.inputs.allocatedStorage),
      "GB-months",
      price("rds.gp3.gbMonth"),
    );
    const version = String(db.inputs.engineVersion);
    const end = options.calendar[version]?.endOfStandardSupport;
    if (end && new Date(`${end}T23:59:59Z`) < options.today) {
      if (!entry) warnings.push(`PostgreSQL ${version} is on paid Extended Support; not priced for ${cls}`);
      else
        add(
          `RDS Extended Support, PostgreSQL ${version} (${entry.vcpu} vCPU)`,
          copies * (entry.vcpu ?? 2) * HOURS,
          "vCPU-hours",
          price("rds.extendedSupport.vcpuHour"),
        );
    }
  }

  // Network.
  const nats = of("aws:ec2/natGateway:NatGateway");
  if (nats.length > 0) {
    add(`NAT gateway hours (${nats.length})`, nats.length * HOURS, "h", price("nat.hour"));
    add("NAT data processing", a.natGb, "GB", price("nat.gb"));
  } else if (privateTasks) {
    add("NAT data processing (the VPC's own NAT)", a.natGb, "GB", price("nat.gb"));
  }
  const eips = of("aws:ec2/eip:Eip");
  if (eips.length > 0)
    add(`Public IPv4: Elastic IPs (${eips.length})`, eips.length * HOURS, "IP-hours", price("ipv4.hour"));
  // Only a stack that serves the cache sends data out.
  if (albs.length > 0 || of("aws:lb/listenerRule:ListenerRule").length > 0)
    add("Data transfer out to the internet", a.gbOut, "GB", price("transfer.internetOutGb"));

  // Storage.
  for (const bucket of of("aws:s3/bucket:Bucket")) {
    if (bucket.name.endsWith("-chunks")) {
      add("S3 Standard: chunks", a.s3Gb, "GB-months", price("s3.standard.gbMonth"));
      add("S3 PUT/COPY/POST/LIST requests", a.s3PutThousands, "thousand", price("s3.put.thousand"));
      add("S3 GET requests", a.s3GetThousands, "thousand", price("s3.get.thousand"));
    } else {
      add(`S3 Standard: ${bucket.name}`, a.albLogGb, "GB-months", price("s3.standard.gbMonth"));
    }
  }

  // Monitoring and secrets.
  for (const group of of("aws:cloudwatch/logGroup:LogGroup")) {
    add(
      `CloudWatch Logs ingestion: ${String(group.inputs.name ?? group.name)}`,
      a.logGb,
      "GB",
      price("logs.ingestGb"),
    );
    add("CloudWatch Logs storage", a.logGb, "GB-months", price("logs.storeGbMonth"));
  }
  const alarmMetrics = of("aws:cloudwatch/metricAlarm:MetricAlarm").reduce((sum, alarm) => {
    const queries = alarm.inputs.metricQueries as Array<{ metric?: unknown }> | undefined;
    return sum + (queries ? queries.filter((q) => q.metric).length : 1);
  }, 0);
  if (alarmMetrics > 0)
    add(
      `CloudWatch alarms (${of("aws:cloudwatch/metricAlarm:MetricAlarm").length} alarms)`,
      alarmMetrics,
      "alarm metrics",
      price("cloudwatch.alarmMetric"),
    );
  // Target tracking creates a high and a low alarm per policy.
  const tracking = of("aws:appautoscaling/policy:Policy").filter(
    (p) => p.inputs.policyType === "TargetTrackingScaling",
  );
  if (tracking.length > 0)
    add(
      `CloudWatch alarms of target tracking (${tracking.length} policies)`,
      2 * tracking.length,
      "alarm metrics",
      price("cloudwatch.alarmMetric"),
    );
  const dashboards = of("aws:cloudwatch/dashboard:Dashboard").length;
  if (dashboards > 0)
    add(
      `CloudWatch dashboards (${dashboards}; ${a.freeDashboards} still free in the account)`,
      Math.max(0, dashboards - a.freeDashboards),
      "dashboards",
      price("cloudwatch.dashboard"),
    );
  const rules = of("aws:cloudwatch/eventRule:EventRule").length;
  if (rules > 0)
    add(
      `EventBridge rules on AWS service events (${rules})`,
      rules,
      "rules",
      price("eventbridge.awsServiceEventRule"),
    );
  const secrets = of("aws:secretsmanager/secret:Secret").length;
  if (secrets > 0) add("Secrets Manager secrets", secrets, "secrets", price("secretsmanager.secret"));
  const keys = of("aws:kms/key:Key").length;
  if (keys > 0) add("KMS keys", keys, "keys", price("kms.key"));

  const total = lines.reduce((s, l) => s + l.monthly, 0);
  return { stack: options.stack, region: options.region, lines, total, warnings, assumptions: a };
}

const usd = (n: number, digits = 2) => `$${n.toFixed(digits)}`;
const unitPrice = (n: number) => (Number(n.toFixed(2)) === n ? usd(n) : `$${Number(n.toPrecision(4))}`);
const quantity = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

/** The assumptions as flags, e.g. `--lcu 1 --s3-gb 100 …`. */
export function assumptionFlags(a: Assumptions): string {
  return (Object.keys(ASSUMPTION_FLAGS) as Array<keyof Assumptions>)
    .map((k) => `--${ASSUMPTION_FLAGS[k]} ${a[k]}`)
    .join(" ");
}

/** A Markdown table (docs/aws.md, the pull request's job summary). */
export function renderMarkdown(e: Estimate): string {
  const rows = e.lines.map(
    (l) =>
      `| ${l.item} | ${quantity(l.quantity)} ${l.unit} | ${unitPrice(l.unitPrice)} | ${usd(l.monthly)} |`,
  );
  return [
    `Stack \`${e.stack}\`, ${prices.region} list prices checked ${prices.checked} (\`ci/commands/cost/aws-prices.json\`), ${HOURS} h a month.`,
    `Assumptions: \`${assumptionFlags(e.assumptions)}\`.`,
    "",
    "| item | quantity | unit price | monthly |",
    "|---|---:|---:|---:|",
    ...rows,
    `| **total** | | | **${usd(e.total)}** |`,
    ...(e.warnings.length > 0 ? ["", ...e.warnings.map((w) => `> warning: ${w}`)] : []),
  ].join("\n");
}

/** A plain-text table for the terminal (the caller prints the warnings, to stderr). */
export function renderText(e: Estimate): string {
  const rows = e.lines.map((l) => [
    l.item,
    `${quantity(l.quantity)} ${l.unit}`,
    unitPrice(l.unitPrice),
    usd(l.monthly),
  ]);
  const all = [["item", "quantity", "unit price", "monthly"], ...rows, ["total", "", "", usd(e.total)]];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [
    `stack ${e.stack}: ${prices.region} list prices checked ${prices.checked} (ci/commands/cost/aws-prices.json), ${HOURS} h a month`,
    `assumptions: ${assumptionFlags(e.assumptions)}`,
    "",
    line(all[0]!),
    ...rows.map(line),
    line(all.at(-1)!),
  ].join("\n");
}
