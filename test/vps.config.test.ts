/** The attic-infra:vps block: what a public NixOS host needs before anything deploys. */
import { describe, expect, it } from "vitest";
import { ConfigError, type LoadedConfig, loadConfig } from "../config/load";
import { exampleBlocks, toConfigMap } from "./support/stacks";

type Blocks = Record<string, any>;

/** The example stack with its `secure:` values as `pulumi config set --secret` provides them. */
function blocks(edit: (b: Blocks) => void): Blocks {
  const b = exampleBlocks("vps") as Blocks;
  Object.assign(b["attic-infra:vps"].storage.s3, { accessKeyId: "K003example", secretAccessKey: "b2secret" });
  edit(b);
  return b;
}
const vps = (b: Blocks) => b["attic-infra:vps"];

function problemsAfter(edit: (b: Blocks) => void): string[] {
  try {
    loadConfig(toConfigMap(blocks(edit)));
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}
const load = (edit: (b: Blocks) => void): LoadedConfig => loadConfig(toConfigMap(blocks(edit)));
const warningsAfter = (edit: (b: Blocks) => void) =>
  load(edit).warnings.filter((w) => !w.includes(".validUntil: token"));

describe("attic-infra:vps", () => {
  it("the example stack is accepted with caddy, postgresql and S3 storage, and no warnings", () => {
    const { config } = load(() => {});
    expect(config.sites).toEqual(["vps"]);
    expect(config.vps).toMatchObject({ proxy: "caddy", database: "postgresql", localPort: 8080 });
    expect(config.vps?.storage.type).toBe("s3");
    expect(warningsAfter(() => {})).toEqual([]);
  });

  it("defaults: caddy, postgresql, 64 GiB uploads with a 1 h timeout, 14 days of dumps", () => {
    const { config } = load((b) => {
      for (const k of ["proxy", "database", "upload", "backup"]) delete vps(b)[k];
    });
    expect(config.vps).toMatchObject({
      proxy: "caddy",
      database: "postgresql",
      upload: { maxBodyGiB: 64, timeoutSeconds: 3600 },
      backup: { dir: "/var/backup/atticd", keepDays: 14, prefix: "attic-infra/db-dumps/" },
    });
  });

  it("a missing domain or acmeEmail is an error that says what to write", () => {
    expect(
      problemsAfter((b) => {
        delete vps(b).domain;
        delete vps(b).acmeEmail;
      }),
    ).toEqual([
      "attic-infra:vps.domain: is required: the public DNS name clients use, e.g. cache.example.com (its A/AAAA records point at the host)",
      "attic-infra:vps.acmeEmail: is required: the address Let's Encrypt writes to about expiring certificates, e.g. ops@example.com",
    ]);
  });

  it("a .local domain, or a name without a dot, is refused: no public DNS, no certificate", () => {
    expect(problemsAfter((b) => (vps(b).domain = "attic.local"))).toEqual([
      'attic-infra:vps.domain: "attic.local" is in .local, the mDNS domain: no public DNS answers for it and Let\'s Encrypt issues no certificate for it. Use a name in a domain you own',
    ]);
    expect(problemsAfter((b) => (vps(b).domain = "attic"))).toEqual([
      'attic-infra:vps.domain: "attic" is not a public DNS name such as cache.example.com',
    ]);
  });

  it("an empty sshFrom is an error: nobody, not even the deploy, could reach SSH", () => {
    expect(problemsAfter((b) => (vps(b).sshFrom = []))).toEqual([
      "attic-infra:vps.sshFrom: is empty: nobody, not even this deploy, could reach SSH; list your admin network and the CI runners that deploy (docs/vps.md)",
    ]);
  });

  it("sshFrom entries must be IPv4 or IPv6 networks without host bits", () => {
    expect(
      problemsAfter((b) => (vps(b).sshFrom = ["10.0.0.1/24", "2001:db8::1/48", "office", "10.1.0.0/16"])),
    ).toEqual([
      'attic-infra:vps.sshFrom[0]: "10.0.0.1/24" is not a network in CIDR form (e.g. 203.0.113.0/24 or 2001:db8::/48, no host bits set)',
      'attic-infra:vps.sshFrom[1]: "2001:db8::1/48" is not a network in CIDR form (e.g. 203.0.113.0/24 or 2001:db8::/48, no host bits set)',
      'attic-infra:vps.sshFrom[2]: "office" is not a network in CIDR form (e.g. 203.0.113.0/24 or 2001:db8::/48, no host bits set)',
    ]);
  });

  it("0.0.0.0/0 or ::/0 in sshFrom is accepted with a warning", () => {
    expect(warningsAfter((b) => (vps(b).sshFrom = ["0.0.0.0/0", "::/0"]))).toEqual([
      'attic-infra:vps.sshFrom[0]: "0.0.0.0/0" lets the whole internet reach SSH on this public host; list your admin network and the CI runners that deploy instead',
      'attic-infra:vps.sshFrom[1]: "::/0" lets the whole internet reach SSH on this public host; list your admin network and the CI runners that deploy instead',
    ]);
  });

  it("S3 storage without keys is an error naming the command that sets them", () => {
    expect(
      problemsAfter((b) => {
        delete vps(b).storage.s3.accessKeyId;
        delete vps(b).storage.s3.secretAccessKey;
      }),
    ).toEqual([
      "attic-infra:vps.storage.s3.accessKeyId: is required: a VPS has no instance role, so atticd needs the bucket's key; set it with `pulumi config set --secret --path vps.storage.s3.accessKeyId <value>`",
      "attic-infra:vps.storage.s3.secretAccessKey: is required: a VPS has no instance role, so atticd needs the bucket's key; set it with `pulumi config set --secret --path vps.storage.s3.secretAccessKey <value>`",
    ]);
  });

  it("storage is required; local storage must be below /var/lib/atticd/ and draws a warning", () => {
    expect(problemsAfter((b) => delete vps(b).storage)).toEqual([
      "attic-infra:vps.storage: is required: s3 { endpoint, region, bucket, accessKeyId, secretAccessKey } (e.g. Backblaze B2), or path for local storage",
    ]);
    expect(problemsAfter((b) => (vps(b).storage = { path: "/srv/attic" }))).toEqual([
      'attic-infra:vps.storage.path: "/srv/attic" is outside /var/lib/atticd/, where atticd (a systemd DynamicUser) can write; use a path below it',
    ]);
    expect(warningsAfter((b) => (vps(b).storage = { path: "/var/lib/atticd/storage" }))).toEqual([
      "attic-infra:vps.storage: local storage keeps every NAR and the database dumps on the host alone; use storage.s3 (e.g. Backblaze B2) so a lost VPS loses nothing",
    ]);
  });

  it("proxy and database take only the documented values", () => {
    expect(
      problemsAfter((b) => {
        vps(b).proxy = "traefik";
        vps(b).database = "mysql";
      }),
    ).toEqual([
      'attic-infra:vps.proxy: "traefik" is not a proxy; use caddy or nginx',
      'attic-infra:vps.database: "mysql" is not a database; use postgresql or sqlite',
    ]);
  });

  it("a host key is required unless explicitly waived, as for the office", () => {
    expect(problemsAfter((b) => delete vps(b).hostKey)).toHaveLength(1);
    expect(problemsAfter((b) => delete vps(b).hostKey)[0]).toMatch(
      /^attic-infra:vps\.hostKey: is required: pin/,
    );
  });

  it("a rollback window shorter than the deploy's budget is an error with the numbers", () => {
    expect(problemsAfter((b) => (vps(b).rollbackTimeoutSeconds = 120))).toEqual([
      "attic-infra:vps.rollbackTimeoutSeconds: 120 s is shorter than the deploy's budget of 180 s (activation 90 + health check 30 + confirm dialling 30 + margin 30); raise it, or lower activationTimeoutSeconds / healthTimeoutSeconds",
    ]);
  });

  it("sites: [vps] needs the attic block", () => {
    expect(problemsAfter((b) => delete b["attic-infra:attic"])).toEqual([
      "attic-infra:attic: is required because sites lists vps; add the attic block (see README, config reference)",
    ]);
  });
});
