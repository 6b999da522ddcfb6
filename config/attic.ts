/** attic-infra:attic — the server, shared by every site that runs atticd. */
import { z } from "zod";
import { parseHumantime } from "./humantime";
import {
  evenIfInvalid,
  humantime,
  int,
  isNum,
  isRecord,
  isStr,
  loose,
  noControlChars,
  records,
  show,
} from "./fields";

/** attic's CACHE_NAME_REGEX (attic/src/cache.rs): names in paths and bodies. */
export const CACHE_NAME = /^[A-Za-z0-9][A-Za-z0-9-_+]{0,49}$/;
/**
 * attic's CACHE_NAME_PATTERN_REGEX (attic/src/cache.rs): the keys of a token's permissions. `*` is
 * the only wildcard; a key that does not match makes atticd ignore the whole token.
 */
export const CACHE_NAME_PATTERN = /^[A-Za-z0-9*][A-Za-z0-9-_+*]{0,49}$/;

/** atticd stores a cache's retention as a 32-bit signed number of seconds (server entity/cache.rs). */
export const MAX_RETENTION_SECONDS = 2_147_483_647;

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
  /** Time-based GC for this cache; unset: the server's default retention. At most 2147483647 s. */
  retention: humantime
    .refine((s) => retentionSeconds(s) <= MAX_RETENTION_SECONDS, {
      error: (i) =>
        `${show(i.input)} is ${retentionSeconds(String(i.input))} s; atticd keeps a cache's retention as a 32-bit signed number of seconds, at most ${MAX_RETENTION_SECONDS} s (about 68 years): use a shorter period, or leave retention unset for the server's default`,
    })
    .optional(),
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

/** Seconds since the epoch. A bare date means the start of that day, UTC. */
export function epochSeconds(date: string): number {
  return Math.floor(Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(date) ? `${date}T00:00:00Z` : date) / 1000);
}

/** A bare `validUntil` date is inclusive: the token expires when that day ends (UTC). */
export function expiry(validUntil: string): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(validUntil) ? epochSeconds(validUntil) + 86400 : epochSeconds(validUntil);
}

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
  .superRefine((raw, ctx) => {
    const t = loose(raw);
    if (isStr(t.notBefore) && isStr(t.validUntil) && Date.parse(t.notBefore) >= Date.parse(t.validUntil)) {
      ctx.addIssue({
        code: "custom",
        path: ["notBefore"],
        message: `${show(t.notBefore)} is not before validUntil`,
      });
    }
  }, evenIfInvalid);
export type TokenConfig = z.infer<typeof tokenSchema>;

// fastcdc (v2020), which atticd uses, panics outside these bounds.
const chunkingSchema = z
  .strictObject({
    narSizeThreshold: int("a NAR size threshold in bytes", 0, 2 ** 32).default(65536),
    minSize: int("a minimum chunk size in bytes", 64, 1_048_576).default(16384),
    avgSize: int("an average chunk size in bytes", 256, 4_194_304).default(65536),
    maxSize: int("a maximum chunk size in bytes", 1024, 16_777_216).default(262144),
  })
  .superRefine((raw, ctx) => {
    const c = loose(raw);
    if (!isNum(c.minSize) || !isNum(c.avgSize) || !isNum(c.maxSize)) return;
    if (!(c.minSize <= c.avgSize && c.avgSize <= c.maxSize)) {
      ctx.addIssue({
        code: "custom",
        message: `minSize ${c.minSize}, avgSize ${c.avgSize}, maxSize ${c.maxSize} are out of order; need minSize <= avgSize <= maxSize`,
      });
    }
  }, evenIfInvalid);

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
  .superRefine((raw, ctx) => {
    const c = loose(raw);
    if (!isNum(c.level) || !isStr(c.type) || !Object.hasOwn(COMPRESSION_LEVELS, c.type)) return;
    const range = COMPRESSION_LEVELS[c.type as keyof typeof COMPRESSION_LEVELS];
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
  }, evenIfInvalid);

export const atticSchema = z
  .strictObject({
    /** The atticd container image: only the aws site runs it (required there, see load.ts). */
    image: image.optional(),
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
  .superRefine((raw, ctx) => {
    const a = loose(raw);
    const names = new Set<string>();
    for (const [c, i] of records(a.caches)) {
      if (!isStr(c.name)) continue;
      if (names.has(c.name))
        ctx.addIssue({
          code: "custom",
          path: ["caches", i, "name"],
          message: `${show(c.name)} is declared twice`,
        });
      names.add(c.name);
    }
    const tokenNames = new Set<string>();
    for (const [t, i] of records(a.tokens)) {
      if (isStr(t.name)) {
        if (tokenNames.has(t.name))
          ctx.addIssue({
            code: "custom",
            path: ["tokens", i, "name"],
            message: `${show(t.name)} is declared twice`,
          });
        tokenNames.add(t.name);
      }
      // Without a list of caches there is nothing to match the patterns against.
      if (!isRecord(t.permissions) || !Array.isArray(a.caches)) continue;
      let patternsValid = true;
      for (const pattern of Object.keys(t.permissions)) {
        const path = ["tokens", i, "permissions", pattern];
        if (!CACHE_NAME_PATTERN.test(pattern)) {
          patternsValid = false;
          ctx.addIssue({
            code: "custom",
            path,
            message: pattern.includes("?")
              ? `${show(pattern)} uses ?, which atticd does not accept in a token (only * is a wildcard): it would ignore the whole token and treat its holder as anonymous; write a glob with * or list the caches`
              : `${show(pattern)} is neither a cache name nor a glob like n3x-* (a letter, digit or *, then up to 49 of A-Z a-z 0-9 - _ + *)`,
          });
        } else if (![...names].some((n) => globMatches(pattern, n))) {
          ctx.addIssue({
            code: "custom",
            path,
            message: `${show(pattern)} matches no cache declared in attic-infra:attic.caches (declared: ${[...names].join(", ") || "none"})`,
          });
        }
      }
      if (!patternsValid) continue;
      const permissions = Object.fromEntries(
        Object.entries(t.permissions).map(([p, v]) => [
          p,
          Array.isArray(v) ? v.filter((x): x is Permission => PERMISSIONS.includes(x as Permission)) : [],
        ]),
      );
      const publicCaches = new Set(
        [...records(a.caches)].filter(([c]) => c.public === true && isStr(c.name)).map(([c]) => c.name),
      );
      for (const [cache, granted] of grantsByCache(permissions, [...names])) {
        if (publicCaches.has(cache) || !granted.has("push") || granted.has("pull")) continue;
        const pusher = Object.keys(permissions).find(
          (p) => globMatches(p, cache) && permissions[p]!.includes("push"),
        )!;
        ctx.addIssue({
          code: "custom",
          path: ["tokens", i, "permissions", pusher],
          message: `grants push on the private cache ${show(cache)} but nothing grants pull there: attic push and attic use read the cache's configuration first, which needs pull (atticd answers 403), so the token could not push; add pull`,
        });
      }
    }
  }, evenIfInvalid);
export type AtticConfig = z.infer<typeof atticSchema>;

/** Seconds of a retention duration, as the cache provider sends them (a whole number). */
export function retentionSeconds(duration: string): number {
  return Math.round(parseHumantime(duration) ?? 0);
}

/**
 * Whether a token's permission key covers a cache: the key itself, or a glob where `*` is any run
 * of characters, the empty one included (wildmatch, which attic's CacheNamePattern uses).
 */
export function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split("*")
      .map((part) => part.replace(/[-+]/g, "\\$&"))
      .join(".*")}$`,
  );
  return re.test(name);
}

/**
 * What a token's permissions grant on each declared cache: the union of every key that covers it,
 * by cache name in a stable (code point) order, caches granted nothing left out. Tokens carry this
 * expansion, not the globs: atticd takes the first matching key, not the union.
 */
export function grantsByCache(
  permissions: Partial<Record<string, readonly Permission[]>>,
  caches: readonly string[],
): Map<string, Set<Permission>> {
  const grants = new Map<string, Set<Permission>>();
  for (const cache of [...caches].sort()) {
    const granted = new Set<Permission>();
    for (const [pattern, perms] of Object.entries(permissions))
      if (globMatches(pattern, cache)) for (const p of perms ?? []) granted.add(p);
    if (granted.size > 0) grants.set(cache, granted);
  }
  return grants;
}
