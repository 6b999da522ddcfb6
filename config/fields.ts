/**
 * Field types shared by the config blocks: numbers with ranges, host names, durations, SSH
 * connections, ARNs and the dedicated-or-existing pattern. Every error is a sentence that says what
 * was expected, so load.ts only has to prefix it with the key path.
 */
import { z } from "zod";
import { parseHumantime } from "./humantime";
import { isIp, isIpv4 } from "./net";

export const show = (v: unknown): string =>
  typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));

export const int = (what: string, min: number, max: number) =>
  z
    .number({ error: (i) => `${show(i.input)} is not a number (expected ${what})` })
    .int({ error: (i) => `${show(i.input)} is not a whole number (expected ${what})` })
    .min(min, { error: (i) => `${show(i.input)} is out of range for ${what} (${min}-${max})` })
    .max(max, { error: (i) => `${show(i.input)} is out of range for ${what} (${min}-${max})` });

export const nonEmpty = (what: string) =>
  z
    .string({ error: (i) => `${show(i.input)} is not a string (expected ${what})` })
    .min(1, { error: `must not be empty (expected ${what})` });

export const humantime = z
  .string({ error: (i) => `${show(i.input)} is not a duration; write it like "12 hours" or "90 days"` })
  .refine((s) => parseHumantime(s) !== undefined, {
    error: (i) =>
      `${show(i.input)} is not a duration atticd understands; write it like "12 hours", "90 days" or "0s"`,
  });

export const hostname = z
  .string({ error: (i) => `${show(i.input)} is not a host name` })
  .regex(
    /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    {
      error: (i) => `${show(i.input)} is not a valid DNS host name`,
    },
  );

export const hostOrIp = z
  .string({ error: (i) => `${show(i.input)} is not a host name or IP address` })
  .refine((s) => isIp(s) || hostname.safeParse(s).success, {
    error: (i) => `${show(i.input)} is not a host name or IP address`,
  });

export const ipv4 = z
  .string({ error: (i) => `${show(i.input)} is not an IPv4 address` })
  .refine(isIpv4, { error: (i) => `${show(i.input)} is not an IPv4 address` });

/** An OpenSSH public host key line: `<type> <base64> [comment]`, as in `ssh-keyscan` output. */
export const sshHostKey = z
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

export const noControlChars = (what: string) =>
  nonEmpty(what).refine((s) => !hasControlChar(s), {
    error: `contains a control character (tab, newline, ...); use plain text for ${what}`,
  });

export const arn = (service: string) =>
  z
    .string({ error: (i) => `${show(i.input)} is not an ARN` })
    .regex(new RegExp(`^arn:aws[a-z-]*:${service}:`), {
      error: (i) => `${show(i.input)} is not an ${service} ARN (arn:aws:${service}:...)`,
    });

/**
 * A block that either describes what the program creates, or holds `existing: {...}` to adopt
 * something that exists. Each shape is strict on its own, so a typo or a mix of both is reported
 * as an unknown key with the keys that are allowed there.
 */
export function dedicatedOrExisting<D extends z.ZodType<object>, E extends z.ZodType<object>>(
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

// ---------------------------------------------------------------------------------------------
// SSH connections (office host, mikrotik switch)
// ---------------------------------------------------------------------------------------------

export const sshFields = (defaultUser: string) => ({
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

/** A cross-field refinement (run it with `evenIfInvalid`): no host key pinned and none waived. */
export function requireHostKey(raw: unknown, ctx: z.RefinementCtx): void {
  const c = loose(raw);
  if (
    c.hostKey === undefined &&
    (c.insecureIgnoreHostKey === false || c.insecureIgnoreHostKey === undefined)
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["hostKey"],
      message:
        "is required: pin the host's key (`ssh-keyscan -t ed25519 <host>`, without the host name), or set insecureIgnoreHostKey: true to accept any key",
    });
  }
}

export const absPath = (what: string) =>
  z
    .string({ error: (i) => `${show(i.input)} is not a path` })
    .regex(/^\/[^"\\$`]*$/, { error: (i) => `${show(i.input)} is not an absolute path (for ${what})` })
    .refine((s) => !hasControlChar(s), {
      error: `contains a control character; not a usable path for ${what}`,
    });

/** Written unquoted into a systemd EnvironmentFile: keep to the characters keys are made of. */
export const s3Credential = z
  .string()
  .regex(/^[A-Za-z0-9+/=_.-]+$/, { error: "is not an S3 key (letters, digits, + / = _ . - only)" });

// ---------------------------------------------------------------------------------------------
// Cross-field checks that one invalid value cannot hide
// ---------------------------------------------------------------------------------------------

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Options for a cross-field refinement that runs even when another field of the same object is
 * invalid: zod skips refinements after an aborting issue (a wrong type, a missing key), which would
 * hide every cross-field problem until the first one is fixed. The refinement then sees invalid
 * fields as their raw input, so it reads them through `loose()` and checks each field's type.
 */
export const evenIfInvalid = { when: (payload: { value: unknown }) => isRecord(payload.value) };

/** The object a cross-field refinement got, with every field typed as what it may really be. */
export const loose = (v: unknown): Record<string, unknown> => (isRecord(v) ? v : {});

export const isStr = (v: unknown): v is string => typeof v === "string";
export const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
/** The elements of a list that are objects, with their index (others are reported by their own check). */
export const records = (v: unknown): [Record<string, unknown>, number][] =>
  Array.isArray(v)
    ? v.flatMap((e, i) => (isRecord(e) ? [[e, i] as [Record<string, unknown>, number]] : []))
    : [];
