/**
 * The stack configuration: every key a user may write under the `attic-infra` namespace, with its
 * default. This file is the product's interface; README.md's config reference documents each key.
 *
 * Checks that involve one block live here as refinements on the smallest object that holds all the
 * fields they compare, so one bad value does not hide another. Checks across blocks live in load.ts.
 */
import { z } from "zod";
import { parseHumantime } from "./humantime";
import {
  ipv4InNetwork,
  ipv4ToNumber,
  isIp,
  isIpv4,
  isNetworkOrBroadcast,
  parseIpv4Interface,
  parseIpv4Network,
} from "./net";

const show = (v: unknown): string =>
  typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));

const int = (what: string, min: number, max: number) =>
  z
    .number({ error: (i) => `${show(i.input)} is not a number (expected ${what})` })
    .int({ error: (i) => `${show(i.input)} is not a whole number (expected ${what})` })
    .min(min, { error: (i) => `${show(i.input)} is out of range for ${what} (${min}-${max})` })
    .max(max, { error: (i) => `${show(i.input)} is out of range for ${what} (${min}-${max})` });

const nonEmpty = (what: string) =>
  z
    .string({ error: (i) => `${show(i.input)} is not a string (expected ${what})` })
    .min(1, { error: `must not be empty (expected ${what})` });

const humantime = z
  .string({ error: (i) => `${show(i.input)} is not a duration; write it like "12 hours" or "90 days"` })
  .refine((s) => parseHumantime(s) !== undefined, {
    error: (i) =>
      `${show(i.input)} is not a duration atticd understands; write it like "12 hours", "90 days" or "0s"`,
  });

const hostname = z
  .string({ error: (i) => `${show(i.input)} is not a host name` })
  .regex(
    /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    {
      error: (i) => `${show(i.input)} is not a valid DNS host name`,
    },
  );

const hostOrIp = z
  .string({ error: (i) => `${show(i.input)} is not a host name or IP address` })
  .refine((s) => isIp(s) || hostname.safeParse(s).success, {
    error: (i) => `${show(i.input)} is not a host name or IP address`,
  });

const ipv4 = z
  .string({ error: (i) => `${show(i.input)} is not an IPv4 address` })
  .refine(isIpv4, { error: (i) => `${show(i.input)} is not an IPv4 address` });

/** An OpenSSH public host key line: `<type> <base64> [comment]`, as in `ssh-keyscan` output. */
const sshHostKey = z
  .string({ error: (i) => `${show(i.input)} is not an SSH host key` })
  .regex(
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$/,
    {
      error: (i) =>
        `${show(i.input)} is not an SSH public host key; copy one line of \`ssh-keyscan -t ed25519 <host>\` without the host name`,
    },
  );

/** Tabs, newlines and other control characters break every format we render into. */
export const hasControlChar = (s: string): boolean =>
  [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

const noControlChars = (what: string) =>
  nonEmpty(what).refine((s) => !hasControlChar(s), {
    error: `contains a control character (tab, newline, ...); use plain text for ${what}`,
  });

// ---------------------------------------------------------------------------------------------
// attic-infra:sites
// ---------------------------------------------------------------------------------------------

export const SITES = ["aws", "office", "mikrotik"] as const;
export type SiteName = (typeof SITES)[number];

export const sitesSchema = z
  .array(z.enum(SITES, { error: (i) => `${show(i.input)} is not a site; use aws, office or mikrotik` }), {
    error: (i) => `${show(i.input)} is not a list; write e.g. [aws] or [office, mikrotik]`,
  })
  .min(1, { error: "is empty; list at least one of aws, office, mikrotik" })
  .superRefine((sites, ctx) => {
    const seen = new Set<string>();
    sites.forEach((s, i) => {
      if (seen.has(s)) ctx.addIssue({ code: "custom", path: [i], message: `${show(s)} is listed twice` });
      seen.add(s);
    });
  });

// ---------------------------------------------------------------------------------------------
// attic-infra:attic — the server, shared by the aws and office sites
// ---------------------------------------------------------------------------------------------

export const CACHE_NAME = /^[A-Za-z0-9][A-Za-z0-9-_+]{0,49}$/;

export const PERMISSIONS = [
  "pull",
  "push",
  "delete",
  "createCache",
  "configureCache",
  "configureRetention",
  "destroyCache",
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const image = z
  .string({ error: (i) => `${show(i.input)} is not an image reference` })
  .superRefine((ref, ctx) => {
    const m =
      /^([a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/.exec(
        ref,
      );
    if (!m) {
      ctx.addIssue({
        code: "custom",
        message: `${show(ref)} is not an image reference; use ghcr.io/zhaofengli/attic:<commit sha> or ghcr.io/zhaofengli/attic@sha256:<digest>`,
      });
      return;
    }
    const [, , tag, digest] = m;
    if (digest) return;
    if (!tag || tag === "latest" || tag === "main") {
      ctx.addIssue({
        code: "custom",
        message: `${show(ref)} is not pinned (attic publishes no releases; \`latest\` and \`main\` move); use a commit SHA tag (ghcr.io/zhaofengli/attic:<sha>) or a digest (@sha256:<digest>)`,
      });
    }
  });

const cacheSchema = z.strictObject({
  name: z.string({ error: (i) => `${show(i.input)} is not a cache name` }).regex(CACHE_NAME, {
    error: (i) =>
      `${show(i.input)} is not a valid cache name (a letter or digit, then up to 49 of A-Z a-z 0-9 - _ +)`,
  }),
  /** Anyone may pull without a token. Default false. */
  public: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(false),
  /** Substituter priority; lower is preferred by Nix. cache.nixos.org is 40. Default 41. */
  priority: int("a cache priority", 0, 2_147_483_647).default(41),
  /** Store paths signed by these keys are not uploaded again. Default [cache.nixos.org-1]. */
  upstreamCacheKeyNames: z.array(noControlChars("a key name")).default(["cache.nixos.org-1"]),
  /** Time-based GC for this cache; unset: the server's default retention. */
  retention: humantime.optional(),
  /** Destroy the cache (and its signing key) when it is removed from config. Default false. */
  destroyOnDelete: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(false),
});
export type CacheConfig = z.infer<typeof cacheSchema>;

const validUntil = z
  .string({ error: (i) => `${show(i.input)} is not a date; write it as 2027-12-31 (quoted is fine)` })
  .refine(
    (s) =>
      /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2}))?$/.test(s) &&
      !Number.isNaN(Date.parse(s)),
    {
      error: (i) => `${show(i.input)} is not a date; write it as 2027-12-31 or 2027-12-31T23:59:59Z`,
    },
  );

const tokenSchema = z
  .strictObject({
    /** The stack output key, e.g. tokens.ci. */
    name: z
      .string({ error: (i) => `${show(i.input)} is not a token name` })
      .regex(/^[A-Za-z][A-Za-z0-9_-]{0,62}$/, {
        error: (i) => `${show(i.input)} is not a token name (a letter, then letters, digits, - or _)`,
      }),
    /** The JWT `sub` claim: who holds the token. Shown in atticd's logs. */
    subject: noControlChars("a token subject"),
    /** The JWT `exp` claim. A bare date is inclusive: valid through that day, UTC. Required: tokens expire. */
    validUntil,
    /** The JWT `nbf` claim; atticd has no clock-skew tolerance, so leave unset unless needed. */
    notBefore: validUntil.optional(),
    permissions: z
      .record(
        z.string(),
        z
          .array(
            z.enum(PERMISSIONS, {
              error: (i) => `${show(i.input)} is not a permission; use one of ${PERMISSIONS.join(", ")}`,
            }),
          )
          .min(1, { error: "is empty; give at least one permission" }),
        {
          error: (i) =>
            `${show(i.input)} is not a map of cache to permissions; write e.g. { n3x: [pull, push] }`,
        },
      )
      .refine((p) => Object.keys(p).length > 0, { error: "is empty; name at least one cache" }),
  })
  .superRefine((t, ctx) => {
    if (t.notBefore && Date.parse(t.notBefore) >= Date.parse(t.validUntil)) {
      ctx.addIssue({
        code: "custom",
        path: ["notBefore"],
        message: `${show(t.notBefore)} is not before validUntil`,
      });
    }
  });
export type TokenConfig = z.infer<typeof tokenSchema>;

// fastcdc (v2020), which atticd uses, panics outside these bounds.
const chunkingSchema = z
  .strictObject({
    narSizeThreshold: int("a NAR size threshold in bytes", 0, 2 ** 32).default(65536),
    minSize: int("a minimum chunk size in bytes", 64, 1_048_576).default(16384),
    avgSize: int("an average chunk size in bytes", 256, 4_194_304).default(65536),
    maxSize: int("a maximum chunk size in bytes", 1024, 16_777_216).default(262144),
  })
  .superRefine((c, ctx) => {
    if (!(c.minSize <= c.avgSize && c.avgSize <= c.maxSize)) {
      ctx.addIssue({
        code: "custom",
        message: `minSize ${c.minSize}, avgSize ${c.avgSize}, maxSize ${c.maxSize} are out of order; need minSize <= avgSize <= maxSize`,
      });
    }
  });

const COMPRESSION_LEVELS = { none: undefined, brotli: [0, 11], zstd: [1, 22], xz: [0, 9] } as const;

const compressionSchema = z
  .strictObject({
    type: z
      .enum(["none", "brotli", "zstd", "xz"], {
        error: (i) => `${show(i.input)} is not a compression type; use none, brotli, zstd or xz`,
      })
      .default("zstd"),
    /** Unset: atticd's default for the type (brotli 5, zstd 8, xz 2). */
    level: int("a compression level", -7, 22).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.level === undefined) return;
    const range = COMPRESSION_LEVELS[c.type];
    if (!range) {
      ctx.addIssue({
        code: "custom",
        path: ["level"],
        message: `compression type none takes no level; remove level`,
      });
    } else if (c.level < range[0] || c.level > range[1]) {
      ctx.addIssue({
        code: "custom",
        path: ["level"],
        message: `${c.level} is not a ${c.type} level (${range[0]}-${range[1]})`,
      });
    }
  });

export const atticSchema = z
  .strictObject({
    image,
    caches: z
      .array(cacheSchema, { error: "is not a list of caches; write e.g. [{ name: main }]" })
      .min(1, { error: "is empty; declare at least one cache" }),
    garbageCollection: z
      .strictObject({
        /** How often GC runs. "0s" disables automatic GC. */
        interval: humantime.default("12 hours"),
        /** Paths neither created nor accessed within this period are collected. "0s": never. */
        defaultRetention: humantime.default("90 days"),
      })
      .prefault({}),
    compression: compressionSchema.prefault({}),
    chunking: chunkingSchema.prefault({}),
    tokens: z.array(tokenSchema, { error: "is not a list of tokens" }).default([]),
    /** atticd `require-proof-of-possession`. Default true: keep it unless you know why. */
    requireProofOfPossession: z
      .boolean({ error: (i) => `${show(i.input)} is not true or false` })
      .default(true),
    /** atticd `soft-delete-caches`. Default false. */
    softDeleteCaches: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(false),
  })
  .superRefine((a, ctx) => {
    const names = new Set<string>();
    a.caches.forEach((c, i) => {
      if (names.has(c.name))
        ctx.addIssue({
          code: "custom",
          path: ["caches", i, "name"],
          message: `${show(c.name)} is declared twice`,
        });
      names.add(c.name);
    });
    const tokenNames = new Set<string>();
    a.tokens.forEach((t, i) => {
      if (tokenNames.has(t.name))
        ctx.addIssue({
          code: "custom",
          path: ["tokens", i, "name"],
          message: `${show(t.name)} is declared twice`,
        });
      tokenNames.add(t.name);
      for (const pattern of Object.keys(t.permissions)) {
        const path = ["tokens", i, "permissions", pattern];
        if (!/^[A-Za-z0-9*?][A-Za-z0-9-_+*?]{0,49}$/.test(pattern)) {
          ctx.addIssue({
            code: "custom",
            path,
            message: `${show(pattern)} is neither a cache name nor a glob like n3x-*`,
          });
        } else if (![...names].some((n) => globMatches(pattern, n))) {
          ctx.addIssue({
            code: "custom",
            path,
            message: `${show(pattern)} matches no cache declared in attic-infra:attic.caches (declared: ${[...names].join(", ") || "none"})`,
          });
        }
      }
    });
  });
export type AtticConfig = z.infer<typeof atticSchema>;

/** atticd's cache-name globs: `*` any run of characters, `?` one character. */
export function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split("")
      .map((ch) => (ch === "*" ? ".*" : ch === "?" ? "." : ch.replace(/[-+]/g, "\\$&")))
      .join("")}$`,
  );
  return re.test(name);
}

// ---------------------------------------------------------------------------------------------
// attic-infra:aws
// ---------------------------------------------------------------------------------------------

const arn = (service: string) =>
  z
    .string({ error: (i) => `${show(i.input)} is not an ARN` })
    .regex(new RegExp(`^arn:aws[a-z-]*:${service}:`), {
      error: (i) => `${show(i.input)} is not an ${service} ARN (arn:aws:${service}:...)`,
    });

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
    /** public-ip: tasks in public subnets with a public IP (no NAT cost); nat-gateway: private subnets + one NAT. */
    egress: z
      .enum(["public-ip", "nat-gateway"], {
        error: (i) => `${show(i.input)} is not an egress mode; use public-ip or nat-gateway`,
      })
      .default("public-ip"),
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
      for (const k of ["publicSubnetIds", "privateSubnetIds"] as const) {
        if (n[k] === undefined)
          ctx.addIssue({
            code: "custom",
            path: [k],
            message: "is required with vpcId: list the subnet ids (at least two)",
          });
      }
    }
  })
  .transform((n) =>
    n.vpcId === undefined
      ? { mode: "create" as const, cidr: n.cidr ?? "10.60.0.0/16", azs: n.azs ?? 2, egress: n.egress }
      : {
          mode: "existing" as const,
          vpcId: n.vpcId,
          publicSubnetIds: n.publicSubnetIds ?? [],
          privateSubnetIds: n.privateSubnetIds ?? [],
          egress: n.egress,
        },
  );

export const dedicatedDatabase = z
  .strictObject({
    instanceClass: z
      .string()
      .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, {
        error: (i) => `${show(i.input)} is not an RDS instance class (e.g. db.t4g.micro)`,
      })
      .default("db.t4g.micro"),
    engineVersion: z
      .union([z.string(), z.number()])
      .transform((v) => String(v))
      .refine((v) => /^1[3-9]$/.test(v), {
        error: (i) => `${show(i.input)} is not a supported PostgreSQL major version (13-19)`,
      })
      .default("16"),
    storageGb: int("a storage size in GiB", 20, 65536).default(20),
    maxStorageGb: int("a storage size in GiB", 20, 65536).default(100),
    multiAz: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(false),
    backupRetentionDays: int("a number of backup days", 1, 35).default(7),
    performanceInsights: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(true),
  })
  .superRefine((d, ctx) => {
    if (d.maxStorageGb < d.storageGb)
      ctx.addIssue({
        code: "custom",
        path: ["maxStorageGb"],
        message: `${d.maxStorageGb} is below storageGb ${d.storageGb}; storage can only grow`,
      });
  });

export const existingDatabase = z.strictObject({
  host: hostOrIp,
  port: int("a TCP port", 1, 65535).default(5432),
  name: nonEmpty("a database name"),
  user: nonEmpty("a database user"),
  /** Secrets Manager secret holding the password. */
  passwordSecretArn: arn("secretsmanager"),
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

/**
 * A block that either describes what the program creates, or holds `existing: {...}` to adopt
 * something that exists. Each shape is strict on its own, so a typo or a mix of both is reported
 * as an unknown key with the keys that are allowed there.
 */
function dedicatedOrExisting<D extends z.ZodType<object>, E extends z.ZodType<object>>(
  dedicated: D,
  existing: E,
) {
  return z.looseObject({}).transform((raw, ctx) => {
    const adopt = raw.existing !== undefined;
    const parsed = (adopt ? z.strictObject({ existing }) : dedicated).safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue(issue as never);
      return z.NEVER;
    }
    return adopt
      ? { mode: "existing" as const, ...(parsed.data as { existing: z.output<E> }).existing }
      : { mode: "dedicated" as const, ...(parsed.data as z.output<D>) };
  });
}

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
  .superRefine((a, ctx) => {
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
    if (a.dns && a.hostname !== a.dns.zoneName && !a.hostname.endsWith(`.${a.dns.zoneName}`)) {
      ctx.addIssue({
        code: "custom",
        path: ["dns", "zoneName"],
        message: `${show(a.dns.zoneName)} does not contain hostname ${show(a.hostname)}`,
      });
    }
  });
export type AwsConfig = z.infer<typeof awsSchema>;

// ---------------------------------------------------------------------------------------------
// SSH connections (office host, mikrotik switch)
// ---------------------------------------------------------------------------------------------

const sshFields = (defaultUser: string) => ({
  host: hostOrIp,
  port: int("a TCP port", 1, 65535).default(22),
  user: nonEmpty("a user name").default(defaultUser),
  /** The host's public key: the connection fails if the host presents another. */
  hostKey: sshHostKey.optional(),
  /** Accept any host key. Only for a first bootstrap on a trusted network. */
  insecureIgnoreHostKey: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(false),
  /** PEM/OpenSSH private key; set it with `pulumi config set --secret --path <site>.privateKey`. */
  privateKey: z.string().min(1).optional(),
});

function requireHostKey(
  c: { hostKey?: string | undefined; insecureIgnoreHostKey: boolean },
  ctx: z.RefinementCtx,
): void {
  if (!c.hostKey && !c.insecureIgnoreHostKey) {
    ctx.addIssue({
      code: "custom",
      path: ["hostKey"],
      message:
        "is required: pin the host's key (`ssh-keyscan -t ed25519 <host>`, without the host name), or set insecureIgnoreHostKey: true to accept any key",
    });
  }
}

// ---------------------------------------------------------------------------------------------
// attic-infra:office
// ---------------------------------------------------------------------------------------------

const absPath = (what: string) =>
  z
    .string({ error: (i) => `${show(i.input)} is not a path` })
    .regex(/^\/[^"\\$`]*$/, { error: (i) => `${show(i.input)} is not an absolute path (for ${what})` })
    .refine((s) => !hasControlChar(s), {
      error: `contains a control character; not a usable path for ${what}`,
    });

const apiEndpoint = z.string({ error: (i) => `${show(i.input)} is not a URL` }).superRefine((s, ctx) => {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    ctx.addIssue({ code: "custom", message: `${show(s)} is not a URL; write e.g. http://attic.lan:8080/` });
    return;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    ctx.addIssue({ code: "custom", message: `${show(s)} is not an http(s) URL` });
  else if (!s.endsWith("/"))
    ctx.addIssue({
      code: "custom",
      message: `${show(s)} must end with "/" (atticd requires it); write ${show(`${s}/`)}`,
    });
});

const listen = z
  .string({ error: (i) => `${show(i.input)} is not a listen address` })
  .regex(/^(\[[0-9A-Fa-f:.]+\]|\d{1,3}(\.\d{1,3}){3}):\d{1,5}$/, {
    error: (i) => `${show(i.input)} is not a socket address; write e.g. "[::]:8080" or "0.0.0.0:8080"`,
  })
  .refine((s) => Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535, {
    error: (i) => `${show(i.input)} has an invalid port`,
  });

/** Written unquoted into a systemd EnvironmentFile: keep to the characters keys are made of. */
const s3Credential = z
  .string()
  .regex(/^[A-Za-z0-9+/=_.-]+$/, { error: "is not an S3 key (letters, digits, + / = _ . - only)" });

const officeStorage = z
  .strictObject({
    path: absPath("the storage directory").optional(),
    /** A block device mounted at `path` (ext4, noatime), e.g. /dev/disk/by-label/attic-storage. */
    device: absPath("the storage device").optional(),
    s3: z
      .strictObject({
        region: nonEmpty("a region"),
        bucket: nonEmpty("a bucket name"),
        /** S3-compatible endpoint (Backblaze B2, MinIO, ...); forces path-style addressing. */
        endpoint: z.url({ error: (i) => `${show(i.input)} is not a URL` }).optional(),
        /** Secret: `pulumi config set --secret --path office.storage.s3.accessKeyId`. */
        accessKeyId: s3Credential.optional(),
        secretAccessKey: s3Credential.optional(),
      })
      .superRefine((s, ctx) => {
        if ((s.accessKeyId === undefined) !== (s.secretAccessKey === undefined))
          ctx.addIssue({ code: "custom", message: "set both accessKeyId and secretAccessKey, or neither" });
      })
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (s.s3 && (s.path || s.device))
      ctx.addIssue({
        code: "custom",
        path: ["s3"],
        message: "cannot be combined with path/device; choose local or S3 storage",
      });
    // atticd runs with systemd's DynamicUser: it can only own files inside its state directory.
    if (s.path !== undefined && !s.path.startsWith("/var/lib/atticd/"))
      ctx.addIssue({
        code: "custom",
        path: ["path"],
        message: `${show(s.path)} is outside /var/lib/atticd/, where atticd (a systemd DynamicUser) can write; use a path below it (mount a device there with storage.device)`,
      });
  })
  .transform((s) =>
    s.s3
      ? { type: "s3" as const, ...s.s3 }
      : { type: "local" as const, path: s.path ?? "/var/lib/atticd/storage", device: s.device },
  );

export const officeSchema = z
  .strictObject({
    ...sshFields("root"),
    /** The URL clients use; must end with "/". */
    apiEndpoint,
    listen: listen.default("[::]:8080"),
    storage: officeStorage.prefault({}),
    /** Seconds after which an unconfirmed switch rolls itself back. */
    rollbackTimeoutSeconds: int("seconds", 60, 3600).default(180),
    /** Limit for `nixos-rebuild build`, which runs before the rollback window opens. */
    buildTimeoutSeconds: int("seconds", 60, 86400).default(1800),
    /** `<flake dir>#<host>` for flake-based hosts, e.g. /etc/nixos#attic-cache. Unset: /etc/nixos/configuration.nix. */
    flake: z
      .string()
      .regex(/^\/[^#\s"'$`\\]+#[A-Za-z0-9._-]+$/, {
        error: (i) => `${show(i.input)} is not <absolute flake dir>#<host name>`,
      })
      .optional(),
    /** Open the listen port in the NixOS firewall. */
    openFirewall: z.boolean({ error: (i) => `${show(i.input)} is not true or false` }).default(true),
    backup: z
      .strictObject({
        /** Where the daily SQLite backups go (outside atticd's state directory). */
        dir: absPath("the backup directory").default("/var/backup/atticd"),
        keep: int("a number of backups", 1, 365).default(14),
      })
      .prefault({}),
  })
  .superRefine(requireHostKey);
export type OfficeConfig = z.infer<typeof officeSchema>;

// ---------------------------------------------------------------------------------------------
// attic-infra:mikrotik
// ---------------------------------------------------------------------------------------------

const interfaceName = z
  .string({ error: (i) => `${show(i.input)} is not an interface name` })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, {
    error: (i) => `${show(i.input)} is not a RouterOS interface name (e.g. ether1, sfp-sfpplus1)`,
  });

const dnsName = z
  .string({ error: (i) => `${show(i.input)} is not a DNS name` })
  .regex(/^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, {
    error: (i) => `${show(i.input)} is not a DNS name`,
  });

const routerosTime = z
  .string({ error: (i) => `${show(i.input)} is not a RouterOS time` })
  .regex(/^(?=\d)(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$|^\d{1,2}:\d{2}:\d{2}$/, {
    error: (i) => `${show(i.input)} is not a RouterOS time; write e.g. 1d, 12h or 00:30:00`,
  });

const mac = z
  .string({ error: (i) => `${show(i.input)} is not a MAC address` })
  .regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, {
    error: (i) => `${show(i.input)} is not a MAC address (AA:BB:CC:DD:EE:01)`,
  })
  .transform((s) => s.toUpperCase());

export const mikrotikSchema = z
  .strictObject({
    ...sshFields("admin"),
    /** Alternative to privateKey: `pulumi config set --secret --path mikrotik.password`. */
    password: z.string().min(1).optional(),
    /** The port you manage the switch through. It never joins the bridge. */
    managementPort: interfaceName,
    bridge: interfaceName.default("bridge-attic"),
    vlanId: int("a VLAN id", 1, 4094),
    accessPorts: z.array(interfaceName).min(1, { error: "is empty; list the ports the cache VLAN is on" }),
    /** The switch's address on the cache VLAN, with prefix: the DHCP gateway and DNS server. */
    address: z.string().refine((s) => parseIpv4Interface(s) !== undefined, {
      error: (i) => `${show(i.input)} is not an address with prefix length (e.g. 10.0.0.1/24)`,
    }),
    dhcp: z.strictObject({
      /** first-last, inside address's subnet. */
      pool: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}-\d{1,3}(\.\d{1,3}){3}$/, {
        error: (i) => `${show(i.input)} is not an address range (10.0.0.100-10.0.0.199)`,
      }),
      leaseTime: routerosTime.default("1d"),
      /** The DNS domain DHCP hands out. */
      domain: dnsName.default("lan"),
      leases: z.array(z.strictObject({ name: dnsName, mac, address: ipv4 })).default([]),
    }),
    dns: z
      .strictObject({
        upstream: z
          .array(ipv4)
          .min(1, { error: "is empty; the switch needs an upstream resolver" })
          .default(["1.1.1.1", "9.9.9.9"]),
        records: z.array(z.strictObject({ name: dnsName, address: ipv4 })).default([]),
      })
      .prefault({}),
    /** Minutes after which an unconfirmed change restores the backup taken before it. */
    rollbackMinutes: int("minutes", 2, 60).default(5),
  })
  .superRefine((m, ctx) => {
    requireHostKey(m, ctx);
    if (m.privateKey && m.password)
      ctx.addIssue({ code: "custom", path: ["password"], message: "set privateKey or password, not both" });
    const seen = new Set<string>();
    m.accessPorts.forEach((p, i) => {
      if (p === m.managementPort)
        ctx.addIssue({
          code: "custom",
          path: ["accessPorts", i],
          message: `${show(p)} is the management port; it must never join the bridge (you would lose access to the switch)`,
        });
      if (seen.has(p))
        ctx.addIssue({ code: "custom", path: ["accessPorts", i], message: `${show(p)} is listed twice` });
      seen.add(p);
    });
    if (m.bridge === m.managementPort || m.accessPorts.includes(m.bridge))
      ctx.addIssue({
        code: "custom",
        path: ["bridge"],
        message: `${show(m.bridge)} is also a port name; name the bridge differently`,
      });

    const iface = parseIpv4Interface(m.address);
    if (!iface) return;
    const subnet = iface.network;
    if (isNetworkOrBroadcast(iface.address, subnet))
      ctx.addIssue({
        code: "custom",
        path: ["address"],
        message: `${show(m.address)} is the network or broadcast address of ${subnet}`,
      });
    const [first, last] = m.dhcp.pool.split("-") as [string, string];
    for (const [end, ip] of [
      ["first", first],
      ["last", last],
    ] as const) {
      if (!isIpv4(ip))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "pool"],
          message: `${show(ip)} (${end} address) is not an IPv4 address`,
        });
      else if (!ipv4InNetwork(ip, subnet) || isNetworkOrBroadcast(ip, subnet))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "pool"],
          message: `${show(ip)} is outside the gateway's subnet ${subnet}`,
        });
    }
    if (isIpv4(first) && isIpv4(last)) {
      if (ipv4ToNumber(first) > ipv4ToNumber(last))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "pool"],
          message: `${show(m.dhcp.pool)} ends before it starts`,
        });
      else if (
        ipv4ToNumber(iface.address) >= ipv4ToNumber(first) &&
        ipv4ToNumber(iface.address) <= ipv4ToNumber(last)
      )
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "pool"],
          message: `${show(m.dhcp.pool)} contains the gateway address ${iface.address}`,
        });
    }
    const macs = new Set<string>();
    const addrs = new Set<string>();
    m.dhcp.leases.forEach((l, i) => {
      if (!ipv4InNetwork(l.address, subnet) || isNetworkOrBroadcast(l.address, subnet))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "leases", i, "address"],
          message: `${show(l.address)} is outside the gateway's subnet ${subnet}`,
        });
      if (l.address === iface.address)
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "leases", i, "address"],
          message: `${show(l.address)} is the switch's own address`,
        });
      if (macs.has(l.mac))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "leases", i, "mac"],
          message: `${show(l.mac)} has two leases`,
        });
      if (addrs.has(l.address))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "leases", i, "address"],
          message: `${show(l.address)} is leased twice`,
        });
      macs.add(l.mac);
      addrs.add(l.address);
    });
    const names = new Set<string>();
    m.dns.records.forEach((r, i) => {
      if (names.has(r.name.toLowerCase()))
        ctx.addIssue({
          code: "custom",
          path: ["dns", "records", i, "name"],
          message: `${show(r.name)} is declared twice`,
        });
      names.add(r.name.toLowerCase());
    });
  });
export type MikrotikConfig = z.infer<typeof mikrotikSchema>;
