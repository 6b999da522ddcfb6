/**
 * npm run verify -- (--stack <name> | --outputs <file>) [--site <name>]... [--json] [--ca <pem>]
 *                   [--cert-warn-days <n>] [--wait <seconds>]
 *
 * Proves a deployed cache works for the people who use it, with nothing but the stack's outputs:
 * the endpoint answers, each cache's nix-cache-info and public key are what the outputs (and so
 * every consumer's nix.conf) say, a private cache refuses strangers, each token is what it claims
 * and the server agrees, the clocks agree, the certificate is valid, the nix.conf snippet lists
 * the checked substituters in the documented order, and (AWS) the alarm topic has a confirmed
 * subscriber. `pulumi up` succeeding proves none of this.
 *
 * It only reads: pulls are nix-cache-info and cache-config GETs, pushes are proven with atticd's
 * get-missing-paths query (needs push, writes nothing); create, configure and destroy are never
 * probed. Tokens appear by name only, never by value. This file is the command line; the checks
 * are in verify/ (site.ts the model, checks.ts the order, server.ts, caches.ts, tokens.ts).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { OutputsError, parseStackOutputs, type StackOutputs } from "../../../components/outputs";
import { verify } from "./checks";
import { type Check, type Options, type Status, UsageError, sitesOf } from "./site";

const USAGE = `usage: npm run verify -- (--stack <name> | --outputs <file>) [options]

Checks a deployed attic cache end to end with the stack's outputs, read-only.

  --stack <name>          read \`pulumi stack output --show-secrets --json --stack <name>\`
  --outputs <file>        read that JSON from a file instead (no Pulumi CLI needed)
  --site <name>           check only this site (repeatable, or comma-separated), e.g. --site aws
                          where the office LAN is out of reach; default: every site in the outputs
  --json                  print {"checks": [...], "summary": {...}} instead of lines (for CI)
  --ca <pem file>         also trust this CA certificate (a private CA; public roots stay trusted)
  --cert-warn-days <n>    warn when the certificate or a token expires within n days (default 21)
  --wait <seconds>        how long GET / is retried while a fresh deploy settles (default 180)
  -h, --help              this text

The AWS site's alarm topic must have a confirmed subscription (SNS ListSubscriptionsByTopic with
the AWS SDK's default credentials; AWS_ENDPOINT_URL_SNS overrides the endpoint): skipped without
credentials.

One line per check: ✓ passed, ✗ failed, ! warning, skip (and why). Exit status 1 when any check
failed, 2 on a usage error, 0 otherwise (warnings included).`;

const MARK: Record<Status, string> = { pass: "✓", fail: "✗", warn: "!", skip: "skip" };

function summary(checks: Check[]): Record<Status, number> {
  const s: Record<Status, number> = { pass: 0, fail: 0, warn: 0, skip: 0 };
  for (const c of checks) s[c.status]++;
  return s;
}

/** Defence in depth: replaces any token value that slipped into a text with its name (tests assert none does). */
function redact(text: string, tokens: Record<string, string>): string {
  let out = text;
  for (const [name, value] of Object.entries(tokens))
    if (value) out = out.split(value).join(`<token ${name}>`);
  return out;
}

/** The outputs, parsed with the contract (components/outputs.ts). */
function readOutputs(values: { stack?: string; outputs?: string }): StackOutputs {
  let text: string;
  if (values.outputs) {
    try {
      text = readFileSync(values.outputs, "utf8");
    } catch (err) {
      throw new UsageError(`--outputs ${values.outputs}: ${(err as Error).message}`);
    }
  } else {
    const r = spawnSync("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", values.stack!], {
      encoding: "utf8",
    });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
      throw new UsageError(
        "pulumi is not installed (https://www.pulumi.com/docs/install/); or pass --outputs <file>",
      );
    if (r.status !== 0)
      throw new UsageError(
        `pulumi stack output --stack ${values.stack} failed: ${r.stderr.trim() || "(no message)"}`,
      );
    text = r.stdout;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`${values.outputs ?? "pulumi stack output"} is not JSON`);
  }
  try {
    return parseStackOutputs(json);
  } catch (err) {
    if (err instanceof OutputsError) throw new UsageError(err.message);
    throw err;
  }
}

/** The CLI: returns the exit status; writes through `out`. */
export async function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      outputs: { type: "string" },
      site: { type: "string", multiple: true },
      json: { type: "boolean" },
      ca: { type: "string" },
      "cert-warn-days": { type: "string" },
      wait: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  if ((values.stack === undefined) === (values.outputs === undefined))
    throw new UsageError("give exactly one of --stack or --outputs");
  const number = (flag: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new UsageError(`--${flag} ${v} is not a number of ${flag === "wait" ? "seconds" : "days"}`);
    return n;
  };
  let ca: string | undefined;
  if (values.ca) {
    try {
      ca = readFileSync(values.ca, "utf8");
    } catch (err) {
      throw new UsageError(`--ca ${values.ca}: ${(err as Error).message}`);
    }
  }
  const opts: Options = {
    sites: (values.site ?? []).flatMap((s) => s.split(",")).filter(Boolean),
    certWarnDays: number("cert-warn-days", values["cert-warn-days"], 21),
    waitSeconds: number("wait", values.wait, 180),
    ...(ca ? { ca } : {}),
  };
  const outputs = readOutputs(values);
  const checks = await verify(outputs, opts);
  const allTokens = Object.fromEntries(
    Object.entries(sitesOf(outputs)).flatMap(([s, site]) =>
      Object.entries(site.tokens).map(([t, v]) => [`${s}.${t}`, v]),
    ),
  );
  const sum = summary(checks);
  let text: string;
  if (values.json) text = `${JSON.stringify({ checks, summary: sum }, null, 2)}\n`;
  else {
    text = checks.map((c) => `${MARK[c.status].padEnd(4)} ${c.site}: ${c.check} — ${c.detail}\n`).join("");
    text += `\n${sum.fail > 0 ? "FAILED" : "OK"}: ${sum.pass} passed, ${sum.fail} failed, ${sum.warn} warnings, ${sum.skip} skipped\n`;
  }
  out(redact(text, allTokens));
  return sum.fail > 0 ? 1 : 0;
}

// Run as a program (npm run verify), not when imported by the tests.
if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
        process.stderr.write(`verify: ${(err as Error).message}\n\n${USAGE}\n`);
        process.exit(2);
      }
      throw err;
    },
  );
}
