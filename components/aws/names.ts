/**
 * Physical AWS names derived from the stack name. Pulumi stack names may hold `_` and `.`
 * (`prod_eu.v2`), which some AWS names refuse: an RDS snapshot identifier takes letters, digits and
 * single hyphens, starting with a letter; task-definition families and dashboard names take letters,
 * digits, `-` and `_`.
 *
 * A name that already fits its rule is returned unchanged: existing stacks keep their names, and
 * nothing is replaced. Only a name that does not fit is rewritten — invalid characters become `-`,
 * shortened to the limit — and gets a 6-character hash of the original, so two stacks whose names
 * differ only in the rewritten characters (`prod_eu`, `prod.eu`) never share a name.
 */
import { sha256 } from "../text";

export interface NameRule {
  /** What AWS calls it, for messages. */
  what: string;
  maxLength: number;
  /** A character the name may contain. */
  allowed: RegExp;
  /** The whole-name rule (including first/last character and length). */
  valid: RegExp;
  /** Collapse runs of hyphens and strip leading non-letters (RDS identifiers). */
  strictHyphens: boolean;
}

export const NAME_RULES = {
  /** RDS DB snapshot identifier (finalSnapshotIdentifier): 1-255, letter first, no `--`, no trailing `-`. */
  rdsSnapshot: {
    what: "RDS snapshot identifier",
    maxLength: 255,
    allowed: /[A-Za-z0-9-]/,
    valid: /^(?=.{1,255}$)[A-Za-z](?:-?[A-Za-z0-9])*$/,
    strictHyphens: true,
  },
  /** ECS task definition family: up to 255 letters, digits, hyphens, underscores. */
  ecsFamily: {
    what: "ECS task definition family",
    maxLength: 255,
    allowed: /[A-Za-z0-9_-]/,
    valid: /^[A-Za-z0-9_-]{1,255}$/,
    strictHyphens: false,
  },
  /** CloudWatch dashboard name: up to 255 letters, digits, `-`, `_`. */
  dashboard: {
    what: "CloudWatch dashboard name",
    maxLength: 255,
    allowed: /[A-Za-z0-9_-]/,
    valid: /^[A-Za-z0-9_-]{1,255}$/,
    strictHyphens: false,
  },
} satisfies Record<string, NameRule>;

/** `name` if it satisfies `rule`, else a valid, length-limited, hash-suffixed rewrite of it. */
export function awsName(name: string, rule: NameRule): string {
  if (rule.valid.test(name)) return name;
  const suffix = `-${sha256(name).slice(0, 6)}`;
  let body = [...name].map((ch) => (rule.allowed.test(ch) ? ch : "-")).join("");
  if (rule.strictHyphens) body = body.replace(/-+/g, "-").replace(/^[^A-Za-z]+/, "");
  body = body.slice(0, rule.maxLength - suffix.length);
  if (rule.strictHyphens) body = body.replace(/-+$/, "");
  const out = `${body || "x"}${suffix}`;
  if (!rule.valid.test(out)) throw new Error(`cannot make ${JSON.stringify(name)} a valid ${rule.what}`);
  return out;
}
