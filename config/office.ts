/** attic-infra:office — atticd on a NixOS host on the office LAN, deployed over SSH. */
import { z } from "zod";
import {
  absPath,
  evenIfInvalid,
  int,
  isStr,
  loose,
  nonEmpty,
  requireHostKey,
  s3Credential,
  show,
  sshFields,
} from "./fields";
import { nixosDeployFields, requireDeployBudget } from "./nixosDeploy";

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
      .superRefine((raw, ctx) => {
        // atticd on the host is a systemd DynamicUser: no HOME (~/.aws), no instance role. The
        // environment file is its only credential source.
        const s = loose(raw);
        for (const key of ["accessKeyId", "secretAccessKey"] as const) {
          if (s[key] === undefined)
            ctx.addIssue({
              code: "custom",
              path: [key],
              message: `is required for S3 storage on the office host (atticd runs as a systemd DynamicUser with no other credential source); set it with \`pulumi config set --secret --path office.storage.s3.${key} <value>\``,
            });
        }
      }, evenIfInvalid)
      .optional(),
  })
  .superRefine((raw, ctx) => {
    const s = loose(raw);
    if (s.s3 && (s.path || s.device))
      ctx.addIssue({
        code: "custom",
        path: ["s3"],
        message: "cannot be combined with path/device; choose local or S3 storage",
      });
    // atticd runs with systemd's DynamicUser: it can only own files inside its state directory.
    if (isStr(s.path) && !s.path.startsWith("/var/lib/atticd/"))
      ctx.addIssue({
        code: "custom",
        path: ["path"],
        message: `${show(s.path)} is outside /var/lib/atticd/, where atticd (a systemd DynamicUser) can write; use a path below it (mount a device there with storage.device)`,
      });
  }, evenIfInvalid)
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
    ...nixosDeployFields,
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
  .superRefine(requireHostKey, evenIfInvalid)
  .superRefine(requireDeployBudget, evenIfInvalid);
export type OfficeConfig = z.infer<typeof officeSchema>;
