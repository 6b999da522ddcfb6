/**
 * The stack outputs: one contract, as terraform-aws-modules keep theirs in outputs.tf. index.ts
 * returns this shape (its type is derived from the schema), `npm run ci-secrets` and `npm run
 * verify` parse `pulumi stack output --json --show-secrets` with it, and docs/outputs.md is
 * generated from it (`npm run docs`; each field's text is its `.describe()`). An output is added
 * here first; the program, the commands and the docs follow.
 *
 * A record whose keys are names the user chose (caches, tokens) marks its key with
 * `.meta({ placeholder })`: the docs list it as `<cache>`.
 */
import type * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { SITES } from "../config/schema";
import type { AtticServer } from "./attic/server";

/** A record keyed by names from the stack's config, shown as `<placeholder>` in the docs. */
const named = <T extends z.ZodType>(placeholder: string, value: T) =>
  z.record(z.string().meta({ placeholder }), value);

const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

export const cacheOutputSchema = z.object({
  substituter: z.url().describe("The cache's substituter URL."),
  publicKey: z
    .string()
    .regex(/^[^:\s]+:[A-Za-z0-9+/=]+$/, "not a public key (<cache>:<base64>)")
    .describe("The cache's public signing key (`<cache>:<base64>`)."),
  public: z
    .boolean()
    .optional()
    .describe(
      "Whether anyone may pull without a token. Absent only in the outputs of a stack last deployed before `npm run verify` existed.",
    ),
  priority: z.number().int().optional().describe("The substituter priority. Absent where `public` is."),
});

/** What every cache site (aws, office, vps) exports; `endpoint` and `nixConf` say what they are there. */
function cacheSiteShape(describe: { endpoint: string; nixConf: string }) {
  return {
    endpoint: z.url().describe(describe.endpoint),
    caches: named("cache", cacheOutputSchema).describe("The caches (`attic-infra:attic.caches`)."),
    tokens: named("token", z.string().regex(JWT, "not a JWT")).describe("The minted token (secret)."),
    pullTokens: named("token", z.string().regex(JWT, "not a JWT"))
      .optional()
      .describe(
        "The token narrowed to pull (secret): the same caches and expiry, subject `<subject>-pull`, no other permission. For jobs that must never push, such as pull requests (`npm run ci-secrets` sets it as `ATTIC_PULL_TOKEN`). A token without pull has none. Absent in the outputs of a stack last deployed before it existed.",
      ),
    nixConf: z.string().describe(describe.nixConf),
    netrc: named("token", z.string()).describe("A netrc line with the token (secret)."),
  };
}

export const awsOutputsSchema = z.object({
  ...cacheSiteShape({
    endpoint: "`https://<hostname>/`, atticd's API endpoint.",
    nixConf: "`extra-substituters` / `extra-trusted-public-keys` lines for nix.conf.",
  }),
  bucketName: z.string().describe("The S3 bucket holding the chunks."),
  databaseEndpoint: z.string().describe("`host:port` of PostgreSQL."),
  database: z
    .object({
      identifier: z.string().describe("The RDS instance identifier."),
      subnetGroup: z.string().describe("The RDS subnet group (for a restore)."),
      parameterGroup: z.string().describe("The RDS parameter group (for a restore)."),
      securityGroupIds: z.array(z.string()).describe("The instance's security groups (for a restore)."),
    })
    .optional()
    .describe("The dedicated database's names. Absent with `database.existing`."),
  ecs: z.object({
    cluster: z.string().describe("The ECS cluster name."),
    apiService: z.string().describe("The api-server ECS service name."),
    gcService: z
      .string()
      .optional()
      .describe(
        "With `gc: service`: the always-on garbage-collector ECS service name (a restore scales it to 0).",
      ),
  }),
  logGroup: z.string().describe("The CloudWatch log group of every task."),
  gcRunTask: z.object({
    cluster: z.string().describe("Cluster ARN for `aws ecs run-task` (garbage collection by hand)."),
    taskDefinition: z.string().describe("The garbage-collector task definition family."),
    subnets: z.array(z.string()).describe("Subnets for the task."),
    securityGroups: z.array(z.string()).describe("Security groups for the task."),
    assignPublicIp: z.boolean().describe("Whether the task needs a public IP (`network.egress: public-ip`)."),
  }),
  gcSchedule: z
    .object({
      name: z.string().describe("The EventBridge Scheduler schedule that starts garbage collection."),
      group: z.string().describe("Its schedule group (the stack's own)."),
    })
    .optional()
    .describe(
      "With `gc: scheduled` and a GC interval: the schedule a restore pauses (docs/runbooks.md). Absent otherwise, and in the outputs of a stack last deployed before it existed.",
    ),
  alarmTopicArn: z
    .string()
    .describe(
      "The SNS topic the alarms and the AWS events (failed GC task, failed deployment) publish to. `npm run verify` fails unless it has a confirmed subscription.",
    ),
  alarmEmailConfirmation: z
    .string()
    .optional()
    .describe(
      "With `alarms.email`: a reminder that AWS mails a confirmation link, and nothing is delivered until it is clicked.",
    ),
});

export const officeOutputsSchema = z.object({
  ...cacheSiteShape({
    endpoint: "`office.apiEndpoint`.",
    nixConf:
      "nix.conf lines; with the vps or aws site in the same stack, their caches too, after the office's through `?priority=` (docs/vps.md, Outputs).",
  }),
  modulePath: z.string().describe("Where the generated NixOS module lives on the host."),
});

export const vpsOutputsSchema = z.object({
  ...cacheSiteShape({
    endpoint: "`https://<domain>/`.",
    nixConf:
      "nix.conf lines; with the aws site in the same stack, its caches too, after the vps's (never the office's).",
  }),
  modulePath: z.string().describe("Where the generated NixOS module lives on the host."),
});

export const mikrotikOutputsSchema = z.object({
  gateway: z.string().describe("The switch's address on the cache VLAN."),
  vlanId: z.number().int().describe("The VLAN id."),
  leases: z
    .array(z.object({ name: z.string(), mac: z.string(), address: z.string() }))
    .describe("The static DHCP leases (`name`, `mac`, `address`)."),
  dnsRecords: z.record(z.string(), z.string()).describe("Static DNS records, name → address."),
  target: z.string().describe("A `pulumi up --target` pattern for the switch's resources alone."),
});

export const stackOutputsSchema = z.object({
  sites: z.array(z.enum(SITES)).describe("The sites this stack deploys (`attic-infra:sites`)."),
  tokenPublicKey: z
    .string()
    .optional()
    .describe(
      "The public half of the token signing key (PEM): every token verifies with it (`npm run verify`). With `aws`, `office` or `vps`.",
    ),
  signingKeyUrn: z
    .string()
    .optional()
    .describe(
      "URN of the token signing key (`pulumi state unprotect`, `pulumi up --replace`). With `aws`, `office` or `vps`.",
    ),
  aws: awsOutputsSchema.optional(),
  office: officeOutputsSchema.optional(),
  vps: vpsOutputsSchema.optional(),
  mikrotik: mikrotikOutputsSchema.optional(),
});

export type CacheOutputs = z.infer<typeof cacheOutputSchema>;
export type AwsOutputs = z.infer<typeof awsOutputsSchema>;
export type OfficeOutputs = z.infer<typeof officeOutputsSchema>;
export type VpsOutputs = z.infer<typeof vpsOutputsSchema>;
export type MikrotikOutputs = z.infer<typeof mikrotikOutputsSchema>;
export type StackOutputs = z.infer<typeof stackOutputsSchema>;
/** What every cache site exports. */
export type CacheSiteOutputs = Pick<
  OfficeOutputs,
  "endpoint" | "caches" | "tokens" | "pullTokens" | "nixConf" | "netrc"
>;

/** A site's outputs as its component holds them: each field a pulumi.Output (optional ones may be absent). */
export type Outputs<T> = { [K in keyof T]: pulumi.Output<Exclude<T[K], undefined>> };

/** An output as the program builds it: any part of it may still be a pulumi.Output. */
export type Deferred<T> = pulumi.Input<T> | (T extends object ? { [K in keyof T]: Deferred<T[K]> } : never);

/** The outputs every cache site has, as its attic server made them. */
export function cacheSiteOutputs(server: AtticServer): Outputs<CacheSiteOutputs> {
  return {
    endpoint: server.endpoint,
    caches: server.caches,
    tokens: server.tokens,
    pullTokens: server.pullTokens,
    nixConf: server.nixConf,
    netrc: server.netrc,
  };
}

/** Thrown when outputs are not this contract's, with every problem and its path. */
export class OutputsError extends Error {}

/** Parses `pulumi stack output --json --show-secrets` (never printing a value: tokens are in it). */
export function parseStackOutputs(json: unknown): StackOutputs {
  const parsed = stackOutputsSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  throw new OutputsError(
    `these are not attic-infra's stack outputs (docs/outputs.md): ${parsed.error.issues
      .map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`)
      .join("; ")}`,
  );
}
