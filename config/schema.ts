/**
 * The stack configuration: every key a user may write under the `attic-infra` namespace, with its
 * default. Each block lives in its own file (attic.ts, aws.ts, office.ts, vps.ts, mikrotik.ts; shared field
 * types in fields.ts); this file lists the sites and re-exports the blocks. README.md's config
 * reference documents each key.
 *
 * Checks that involve one block live with that block as refinements on the smallest object that
 * holds all the fields they compare, so one bad value does not hide another. Checks across blocks
 * live in load.ts.
 */
import { z } from "zod";
import { show } from "./fields";

export * from "./attic";
export * from "./aws";
export { hasControlChar } from "./fields";
export * from "./mikrotik";
export * from "./office";
export * from "./vps";

export const SITES = ["aws", "office", "vps", "mikrotik"] as const;
export type SiteName = (typeof SITES)[number];

export const sitesSchema = z
  .array(
    z.enum(SITES, { error: (i) => `${show(i.input)} is not a site; use aws, office, vps or mikrotik` }),
    {
      error: (i) => `${show(i.input)} is not a list; write e.g. [aws] or [office, mikrotik]`,
    },
  )
  .min(1, { error: "is empty; list at least one of aws, office, vps, mikrotik" })
  .superRefine((sites, ctx) => {
    const seen = new Set<string>();
    sites.forEach((s, i) => {
      if (seen.has(s)) ctx.addIssue({ code: "custom", path: [i], message: `${show(s)} is listed twice` });
      seen.add(s);
    });
  });
