/** attic-infra:aws — atticd on ECS Fargate behind an ALB, S3 chunks, RDS metadata. */
import { z } from "zod";
import { MIN_BACKUP_RETENTION_DAYS } from "../policy/minimums";
import rdsPostgresql from "./rds-postgresql.json";
import {
  arn,
  dedicatedOrExisting,
  evenIfInvalid,
  hostname,
  hostOrIp,
  int,
  isStr,
  loose,
  nonEmpty,
  show,
} from "./fields";
import { parseIpv4Network } from "./net";

const cidrV4 = z
  .string({ error: (i) => `${show(i.input)} is not a CIDR block` })
  .refine((s) => parseIpv4Network(s) !== undefined, {
    error: (i) =>
      `${show(i.input)} is not an IPv4 network in CIDR form (e.g. 10.60.0.0/16, no host bits set)`,
  });

const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

// Fargate's valid CPU units → memory (MiB) choices.
const FARGATE_MEMORY: Record<number, number[]> = {
  256: [512, 1024, 2048],
  512: [1024, 2048, 3072, 4096],
  1024: [2048, 3072, 4096, 5120, 6144, 7168, 8192],
  2048: Array.from({ length: 13 }, (_, i) => 4096 + i * 1024),
  4096: Array.from({ length: 23 }, (_, i) => 8192 + i * 1024),
  8192: Array.from({ length: 12 }, (_, i) => 16384 + i * 4096),
  16384: Array.from({ length: 12 }, (_, i) => 32768 + i * 8192),
};

const subnetIds = (what: string) =>
  z
    .array(
      z
        .string()
        .regex(/^subnet-[0-9a-f]+$/, { error: (i) => `${show(i.input)} is not a subnet id (subnet-...)` }),
    )
    .min(2, { error: `needs at least two ${what} subnets in different availability zones` });

const networkSchema = z
  .strictObject({
    cidr: cidrV4.optional(),
    azs: int("a number of availability zones", 2, 6).optional(),
    /**
     * public-ip: tasks in public subnets with a public IP (no NAT cost); nat-gateway: private subnets
     * behind one NAT the program creates, or — in an existing VPC (the default there) — the VPC's own.
     */
    egress: z
      .enum(["public-ip", "nat-gateway"], {
        error: (i) => `${show(i.input)} is not an egress mode; use public-ip or nat-gateway`,
      })
      .optional(),
    vpcId: z
      .string()
      .regex(/^vpc-[0-9a-f]+$/, { error: (i) => `${show(i.input)} is not a VPC id (vpc-...)` })
      .optional(),
    publicSubnetIds: subnetIds("public").optional(),
    privateSubnetIds: subnetIds("private").optional(),
  })
  .superRefine((n, ctx) => {
    if (n.vpcId === undefined) {
      for (const k of ["publicSubnetIds", "privateSubnetIds"] as const) {
        if (n[k] !== undefined)
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: "is only used with vpcId; add vpcId or remove it",
          });
      }
      if (n.cidr) {
        const prefix = Number(n.cidr.split("/")[1]);
        if (prefix > 20)
          ctx.addIssue({
            code: "custom",
            path: ["cidr"],
            message: `${show(n.cidr)} is too small; use a /20 or larger`,
          });
      }
    } else {
      for (const k of ["cidr", "azs"] as const) {
        if (n[k] !== undefined)
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: "is only used when the program creates the VPC; remove it or vpcId",
          });
      }
      // publicSubnetIds: required only for a dedicated ALB or public-ip tasks (checked with the load balancer).
      if (n.privateSubnetIds === undefined)
        ctx.addIssue({
          code: "custom",
          path: ["privateSubnetIds"],
          message: "is required with vpcId: list the subnet ids (at least two)",
        });
    }
  })
  .transform((n) =>
    n.vpcId === undefined
      ? {
          mode: "create" as const,
          cidr: n.cidr ?? "10.60.0.0/16",
          azs: n.azs ?? 2,
          egress: n.egress ?? "public-ip",
        }
      : {
          mode: "existing" as const,
          vpcId: n.vpcId,
          publicSubnetIds: n.publicSubnetIds ?? [],
          privateSubnetIds: n.privateSubnetIds ?? [],
          // Shared infrastructure: the tasks use the VPC's private subnets and its own egress.
          egress: n.egress ?? "nat-gateway",
        },
  );

/** RDS for PostgreSQL major versions with their end of standard support (config/rds-postgresql.json). */
export const RDS_POSTGRES_VERSIONS: Record<string, { endOfStandardSupport: string }> =
  rdsPostgresql.majorVersions;

/**
 * The verdict on a dedicated database's major version. RDS enrolls an instance past its version's end
 * of standard support in paid Extended Support: a new instance on such a version is refused; an
 * existing one (already running, created when the version was supported) only warned about, so that
 * an unrelated `pulumi up` is never blocked.
 */
export function engineVersionVerdict(
  version: string,
  { instanceExists, today }: { instanceExists: boolean; today: Date },
): { error?: string; warning?: string } {
  const where = "attic-infra:aws.database.engineVersion";
  const entry = RDS_POSTGRES_VERSIONS[version];
  const supported = Object.entries(RDS_POSTGRES_VERSIONS)
    .filter(([, v]) => new Date(`${v.endOfStandardSupport}T23:59:59Z`) >= today)
    .map(([k]) => k);
  if (!entry) {
    const message = `${where}: ${show(version)} is not a PostgreSQL major version RDS offers (known: ${Object.keys(RDS_POSTGRES_VERSIONS).join(", ")}; config/rds-postgresql.json)`;
    return instanceExists ? { warning: message } : { error: message };
  }
  const end = new Date(`${entry.endOfStandardSupport}T23:59:59Z`);
  if (end < today) {
    const base = `${where}: PostgreSQL ${version} left RDS standard support on ${entry.endOfStandardSupport}; the instance runs on paid RDS Extended Support (per vCPU-hour)`;
    return instanceExists
      ? {
          warning: `${base}. Upgrade: set engineVersion to ${supported.at(-1) ?? "a supported version"} (one \`pulumi up\`, see docs/aws.md)`,
        }
      : { error: `${base}. A new database must use a supported version: ${supported.join(", ")}` };
  }
  const days = Math.floor((end.getTime() - today.getTime()) / 86_400_000);
  if (days < 180)
    return {
      warning: `${where}: PostgreSQL ${version} leaves RDS standard support on ${entry.endOfStandardSupport} (in ${days} days); after that RDS bills Extended Support. Plan the upgrade (docs/aws.md)`,
    };
  return {};
}

export const dedicatedDatabase = z
  .strictObject({
    instanceClass: z
      .string()
      .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, {
        error: (i) => `${show(i.input)} is not an RDS instance class (e.g. db.t4g.micro)`,
      })
      .default("db.t4g.micro"),
    /** A major version; whether RDS still supports it is decided at deploy time (engineVersionVerdict). */
    engineVersion: z
      .union([z.string(), z.number()])
      .transform((v) => String(v))
      .refine((v) => /^[1-9][0-9]$/.test(v), {
        error: (i) => `${show(i.input)} is not a PostgreSQL major version (e.g. "17")`,
      })
      .default("16"),
    storageGb: int("a storage size in GiB", 20, 65536).default(20),
    maxStorageGb: int("a storage size in GiB", 20, 65536).default(100),
    multiAz: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(false),
    /** At least the policy pack's floor: a point-in-time restore reaches back this many days. */
    backupRetentionDays: z
      .number({ error: (i) => `${show(i.input)} is not a number (expected a number of backup days)` })
      .int({ error: (i) => `${show(i.input)} is not a whole number (expected a number of backup days)` })
      .min(MIN_BACKUP_RETENTION_DAYS, {
        error: (i) =>
          `${show(i.input)} is below ${MIN_BACKUP_RETENTION_DAYS}, the fewest days of backups the policy pack accepts (policy/minimums.ts); use ${MIN_BACKUP_RETENTION_DAYS}-35`,
      })
      .max(35, { error: (i) => `${show(i.input)} is above 35, the most days of backups RDS keeps` })
      .default(MIN_BACKUP_RETENTION_DAYS),
    performanceInsights: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(true),
  })
  .superRefine((d, ctx) => {
    // RDS refuses an autoscaling maximum below 110 % of the allocated storage.
    const least = Math.ceil(d.storageGb * 1.1);
    if (d.maxStorageGb < least)
      ctx.addIssue({
        code: "custom",
        path: ["maxStorageGb"],
        message: `${d.maxStorageGb} is below 110 % of storageGb ${d.storageGb}; RDS storage autoscaling needs at least ${least} (and 110 % of the current size once autoscaling has grown it)`,
      });
  });

/** A complete Secrets Manager secret ARN: the name, then `-` and the six random characters AWS appends. */
export const FULL_SECRET_ARN =
  /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;

export const existingDatabase = z.strictObject({
  host: hostOrIp,
  port: int("a TCP port", 1, 65535).default(5432),
  name: nonEmpty("a database name"),
  user: nonEmpty("a database user"),
  /**
   * Secrets Manager secret holding the password: its full ARN, with the 6-character suffix Secrets
   * Manager appends. ECS `secrets.valueFrom` wants the full ARN, and the execution role is granted
   * exactly this ARN: a partial one passes `pulumi up` and the task then cannot start.
   */
  passwordSecretArn: arn("secretsmanager").refine((s) => FULL_SECRET_ARN.test(s), {
    error: (i) =>
      `${show(i.input)} is not a full secret ARN: it must end in -<6 characters> (arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf); ECS needs the full ARN. Look it up: aws secretsmanager describe-secret --secret-id <name> --query ARN`,
  }),
  /** When the secret is JSON (as RDS-managed secrets are), the key that holds the password. */
  passwordSecretJsonKey: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, { error: (i) => `${show(i.input)} is not a JSON key name` })
    .optional(),
  /** The database's security group: the program adds one ingress rule from the tasks on its port. */
  securityGroupId: z
    .string()
    .regex(/^sg-[0-9a-f]+$/, { error: (i) => `${show(i.input)} is not a security group id (sg-...)` })
    .optional(),
});

const databaseSchema = dedicatedOrExisting(dedicatedDatabase, existingDatabase);

const serviceSchema = z
  .strictObject({
    cpu: int("Fargate CPU units", 256, 16384).default(512),
    memory: int("Fargate memory in MiB", 512, 122880).default(1024),
    minTasks: int("a task count", 1, 100).default(1),
    maxTasks: int("a task count", 1, 100).default(3),
    cpuTargetPercent: int("a CPU target percentage", 10, 95).default(70),
    requestsPerTargetPerMinute: int("requests per target per minute", 1, 1_000_000).default(1000),
    /** ARM64 is ~20 % cheaper on Fargate; the attic image is multi-arch. */
    cpuArchitecture: z
      .enum(["ARM64", "X86_64"], {
        error: (i) => `${show(i.input)} is not a CPU architecture; use ARM64 or X86_64`,
      })
      .default("ARM64"),
    /** Seconds the ALB health check is ignored after a task starts (migrations run first). */
    healthCheckGracePeriodSeconds: int("seconds", 0, 7200).default(120),
    /** Run in this existing ECS cluster instead of creating one. */
    clusterArn: arn("ecs").optional(),
    /**
     * How long the load balancer lets a stopping task finish its requests (target group deregistration
     * delay) before ECS signals it: a NAR upload is one long request.
     */
    deregistrationDelaySeconds: int("seconds", 0, 3600).default(300),
    /** SIGTERM → SIGKILL grace after the drain (Fargate allows at most 120). */
    stopTimeoutSeconds: int("seconds (Fargate allows 2-120)", 2, 120).default(120),
  })
  .superRefine((s, ctx) => {
    if (s.minTasks > s.maxTasks)
      ctx.addIssue({
        code: "custom",
        path: ["minTasks"],
        message: `${s.minTasks} is greater than maxTasks ${s.maxTasks}`,
      });
    const mem = FARGATE_MEMORY[s.cpu];
    if (!mem) {
      ctx.addIssue({
        code: "custom",
        path: ["cpu"],
        message: `${s.cpu} is not a Fargate CPU size; use one of ${Object.keys(FARGATE_MEMORY).join(", ")}`,
      });
    } else if (!mem.includes(s.memory)) {
      ctx.addIssue({
        code: "custom",
        path: ["memory"],
        message: `${s.memory} MiB is not valid with cpu ${s.cpu}; use ${mem[0]}-${mem[mem.length - 1]} in steps of ${mem[1]! - mem[0]!}`,
      });
    }
  });

export const dedicatedLoadBalancer = z.strictObject({
  allowedCidrs: z
    .array(cidrV4)
    .min(1, { error: "is empty; nobody could reach the cache" })
    .default(["0.0.0.0/0"]),
  /** One NAR upload is one streamed PUT: the ALB's default 60 s cuts large uploads. */
  idleTimeoutSeconds: int("an idle timeout in seconds", 60, 4000).default(3600),
  accessLogs: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(true),
  sslPolicy: z
    .string()
    .regex(/^ELBSecurityPolicy-TLS13-1-[23]-/, {
      error: (i) =>
        `${show(i.input)} is not a TLS 1.2+ policy; use ELBSecurityPolicy-TLS13-1-2-2021-06 or newer`,
    })
    .default("ELBSecurityPolicy-TLS13-1-2-2021-06"),
});

export const existingLoadBalancer = z.strictObject({
  listenerArn: arn("elasticloadbalancing"),
  securityGroupId: z.string().regex(/^sg-[0-9a-f]+$/, {
    error: (i) => `${show(i.input)} is not a security group id (sg-...)`,
  }),
  rulePriority: int("a listener rule priority", 1, 50000),
});

const loadBalancerSchema = dedicatedOrExisting(dedicatedLoadBalancer, existingLoadBalancer);

/** The blocks built by dedicatedOrExisting: [what the program creates, what `existing` holds]. */
export const EITHER_BLOCKS: Record<string, [z.ZodType, z.ZodType]> = {
  "aws.database": [dedicatedDatabase, existingDatabase],
  "aws.loadBalancer": [dedicatedLoadBalancer, existingLoadBalancer],
};

export const awsSchema = z
  .strictObject({
    hostname,
    dns: z.strictObject({ zoneName: hostname }).optional(),
    certificateArn: arn("acm").optional(),
    network: networkSchema.prefault({}),
    database: databaseSchema.prefault({}),
    service: serviceSchema.prefault({}),
    /** scheduled: an EventBridge-scheduled task (--mode garbage-collector-once); service: an always-on task. */
    gc: z
      .enum(["scheduled", "service"], {
        error: (i) => `${show(i.input)} is not a GC mode; use scheduled or service`,
      })
      .default("scheduled"),
    loadBalancer: loadBalancerSchema.prefault({}),
    storage: z
      .strictObject({
        intelligentTieringAfterDays: int("a number of days", 0, 3650).default(30),
        noncurrentVersionExpirationDays: int("a number of days", 1, 3650).default(30),
        /** SSE-KMS with this key; unset: SSE-S3 (AES256). */
        kmsKeyArn: arn("kms").optional(),
        /** Alarm when the bucket grows past this many GiB. */
        sizeAlarmGb: int("a size in GiB", 1, 1_000_000).default(500),
      })
      .prefault({}),
    alarms: z
      .strictObject({
        email: z.email({ error: (i) => `${show(i.input)} is not an email address` }).optional(),
      })
      .prefault({}),
    /** Container Insights on the cluster the program creates: ≈ 31 custom metrics, ≈ $9/month. */
    containerInsights: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(false),
    logRetentionDays: z
      .number()
      .refine((d) => LOG_RETENTION_DAYS.includes(d), {
        error: (i) =>
          `${show(i.input)} is not a CloudWatch retention; use one of ${LOG_RETENTION_DAYS.join(", ")}`,
      })
      .default(30),
    tags: z
      .record(z.string(), z.string({ error: (i) => `${show(i.input)} is not a string tag value` }))
      .default({}),
  })
  .superRefine((raw, ctx) => {
    const a = loose(raw);
    if ((a.dns === undefined) === (a.certificateArn === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [],
        message:
          a.dns === undefined
            ? "needs a TLS certificate: set dns.zoneName (Route53 + ACM) or certificateArn"
            : "sets both dns and certificateArn; keep exactly one",
      });
    }
    const service = loose(a.service);
    const network = loose(a.network);
    const lb = loose(a.loadBalancer);
    if (a.containerInsights === true && isStr(service.clusterArn))
      ctx.addIssue({
        code: "custom",
        path: ["containerInsights"],
        message:
          "is a setting of the cluster, and service.clusterArn names a cluster this stack does not own; remove containerInsights (the cluster's owner decides)",
      });
    if (
      network.mode === "existing" &&
      Array.isArray(network.publicSubnetIds) &&
      network.publicSubnetIds.length === 0 &&
      (lb.mode === "dedicated" || network.egress === "public-ip")
    )
      ctx.addIssue({
        code: "custom",
        path: ["network", "publicSubnetIds"],
        message:
          lb.mode === "dedicated"
            ? "is required with vpcId and a dedicated load balancer: list the public subnets for the ALB (at least two)"
            : "is required with egress: public-ip: list the public subnets the tasks run in (at least two)",
      });
    const zone = loose(a.dns).zoneName;
    if (isStr(zone) && isStr(a.hostname) && a.hostname !== zone && !a.hostname.endsWith(`.${zone}`)) {
      ctx.addIssue({
        code: "custom",
        path: ["dns", "zoneName"],
        message: `${show(zone)} does not contain hostname ${show(a.hostname)}`,
      });
    }
  }, evenIfInvalid);
export type AwsConfig = z.infer<typeof awsSchema>;
