/**
 * attic-infra:vps — atticd on a public NixOS host (a VPS such as Hetzner), deployed over SSH like the
 * office host: HTTPS through Caddy or NGINX with a Let's Encrypt certificate, metadata in the host's
 * PostgreSQL, chunks in an S3-compatible bucket (Backblaze B2), SSH only from `sshFrom`.
 */
import { z } from "zod";
import {
  absPath,
  evenIfInvalid,
  hostname,
  int,
  isStr,
  loose,
  nonEmpty,
  requireHostKey,
  s3Credential,
  show,
  sshFields,
} from "./fields";
import { parseCidr } from "./net";
import { nixosDeployFields, requireDeployBudget } from "./nixosDeploy";

const required = (what: string, expected: string) => (i: { input: unknown }) =>
  i.input === undefined ? `is required: ${what}` : `${show(i.input)} is not ${expected}`;

const domain = z
  .string({
    error: required(
      "the public DNS name clients use, e.g. cache.example.com (its A/AAAA records point at the host)",
      "a host name",
    ),
  })
  .superRefine((d, ctx) => {
    if (!hostname.safeParse(d).success || !d.includes(".")) {
      ctx.addIssue({
        code: "custom",
        message: `${show(d)} is not a public DNS name such as cache.example.com`,
      });
    } else if (d.toLowerCase().endsWith(".local")) {
      ctx.addIssue({
        code: "custom",
        message: `${show(d)} is in .local, the mDNS domain: no public DNS answers for it and Let's Encrypt issues no certificate for it. Use a name in a domain you own`,
      });
    }
  })
  // atticd compares the Host header with allowed-hosts exactly (server middleware.rs, restrict_host)
  // and curl, which Nix uses, sends the host as written: every URL handed out is lower case.
  .transform((d) => d.toLowerCase());

const acmeEmail = z.email({
  error: required(
    "the address Let's Encrypt writes to about expiring certificates, e.g. ops@example.com",
    "an email address",
  ),
});

const cidr = z.string({ error: (i) => `${show(i.input)} is not a network` }).refine((s) => parseCidr(s), {
  error: (i) =>
    `${show(i.input)} is not a network in CIDR form (e.g. 203.0.113.0/24 or 2001:db8::/48, no host bits set)`,
});

const s3Key = (name: string) =>
  z
    .string({
      error: required(
        `a VPS has no instance role, so atticd needs the bucket's key; set it with \`pulumi config set --secret --path vps.storage.s3.${name} <value>\``,
        "an S3 key",
      ),
    })
    .pipe(s3Credential);

const vpsStorage = z
  .strictObject({
    /** Local storage below /var/lib/atticd/ (no dumps leave the host then). */
    path: absPath("the storage directory").optional(),
    s3: z
      .strictObject({
        region: nonEmpty("a region"),
        bucket: nonEmpty("a bucket name"),
        /** S3-compatible endpoint (Backblaze B2: https://s3.<region>.backblazeb2.com). */
        endpoint: z.url({ error: (i) => `${show(i.input)} is not a URL` }).optional(),
        /** Secret. */
        accessKeyId: s3Key("accessKeyId"),
        /** Secret. */
        secretAccessKey: s3Key("secretAccessKey"),
      })
      .optional(),
  })
  .superRefine((raw, ctx) => {
    const s = loose(raw);
    if (s.s3 && s.path)
      ctx.addIssue({
        code: "custom",
        path: ["s3"],
        message: "cannot be combined with path; choose local or S3 storage",
      });
    if (!s.s3 && !s.path)
      ctx.addIssue({
        code: "custom",
        message:
          "is required: s3 { endpoint, region, bucket, accessKeyId, secretAccessKey } (e.g. Backblaze B2), or path for local storage",
      });
    if (isStr(s.path) && !s.path.startsWith("/var/lib/atticd/"))
      ctx.addIssue({
        code: "custom",
        path: ["path"],
        message: `${show(s.path)} is outside /var/lib/atticd/, where atticd (a systemd DynamicUser) can write; use a path below it`,
      });
  }, evenIfInvalid)
  .transform((s) =>
    s.s3
      ? { type: "s3" as const, ...s.s3 }
      : { type: "local" as const, path: s.path ?? "/var/lib/atticd/storage" },
  );

export const vpsSchema = z
  .strictObject({
    ...sshFields("root"),
    /** The public name, lower-cased: api-endpoint https://<domain>/, the certificate, atticd's allowed-hosts. */
    domain,
    /** Let's Encrypt account email. */
    acmeEmail,
    proxy: z
      .enum(["caddy", "nginx"], { error: (i) => `${show(i.input)} is not a proxy; use caddy or nginx` })
      .default("caddy"),
    database: z
      .enum(["postgresql", "sqlite"], {
        error: (i) => `${show(i.input)} is not a database; use postgresql or sqlite`,
      })
      .default("postgresql"),
    /** The loopback port atticd listens on; only the proxy reaches it. */
    localPort: int("a TCP port", 1024, 65535).default(8080),
    storage: vpsStorage.prefault({}),
    /** Networks (IPv4 and IPv6 CIDR) that may reach SSH: your admin network and the deploying runners. */
    sshFrom: z
      .array(cidr, { error: "is not a list of networks; write e.g. [203.0.113.0/24, 2001:db8::/48]" })
      .min(1, {
        error:
          "is empty: nobody, not even this deploy, could reach SSH; list your admin network and the CI runners that deploy (docs/vps.md)",
      }),
    upload: z
      .strictObject({
        /** Largest NAR upload the proxy accepts, GiB. */
        maxBodyGiB: int("a size in GiB", 1, 1024).default(64),
        /** How long the proxy waits on a silent upload or response. */
        timeoutSeconds: int("seconds", 60, 86400).default(3600),
      })
      .prefault({}),
    backup: z
      .strictObject({
        /** Where the daily dumps go on the host. */
        dir: absPath("the dump directory").default("/var/backup/atticd"),
        /** Dumps older than this are deleted on the host and in the bucket. */
        keepDays: int("a number of days", 1, 3650).default(14),
        /** Key prefix in the bucket for the dumps (S3 storage). */
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9!_.*'()-]+(\/[A-Za-z0-9!_.*'()-]+)*\/$/, {
            error: (i) =>
              `${show(i.input)} is not a key prefix like attic-infra/db-dumps/ (no leading /, ends with /)`,
          })
          .default("attic-infra/db-dumps/"),
      })
      .prefault({}),
    /** How long the first deploy waits for the Let's Encrypt certificate. */
    certificateWaitSeconds: int("seconds", 30, 3600).default(300),
    ...nixosDeployFields,
  })
  .superRefine(requireHostKey, evenIfInvalid)
  .superRefine(requireDeployBudget, evenIfInvalid);
export type VpsConfig = z.infer<typeof vpsSchema>;

/** `sshFrom` entries that let the whole internet reach SSH. */
export const OPEN_TO_ALL = ["0.0.0.0/0", "::/0"];
