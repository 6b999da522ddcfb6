import { describe, expect, it } from "vitest";
import { parseHumantime } from "../config/humantime";
import { MIN_BACKUP_RETENTION_DAYS } from "../policy/minimums";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { ConfigError, type LoadedConfig, loadConfig, objectKeys } from "../config/load";
import {
  EITHER_BLOCKS,
  atticSchema,
  awsSchema,
  mikrotikSchema,
  officeSchema,
  vpsSchema,
} from "../config/schema";
import { exampleBlocks, exampleConfig, ROOT, toConfigMap } from "./support/stacks";

type Blocks = Record<string, any>;

/** Loads a copy of an example stack changed by `edit`, returning the problems (empty if valid). */
function problemsAfter(stack: string, edit: (b: Blocks) => void): string[] {
  const blocks = exampleBlocks(stack) as Blocks;
  edit(blocks);
  try {
    loadConfig(toConfigMap(blocks));
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

function loadEdited(stack: string, edit: (b: Blocks) => void): LoadedConfig {
  const blocks = exampleBlocks(stack) as Blocks;
  edit(blocks);
  return loadConfig(toConfigMap(blocks));
}

describe("the example stacks", () => {
  it("dev (aws) is accepted and selects only the aws site", () => {
    const { config, warnings } = loadConfig(exampleConfig("dev"));
    expect(config.sites).toEqual(["aws"]);
    expect(config.aws?.hostname).toBe("attic.example.com");
    expect(config.office).toBeUndefined();
    // Token expiry warnings depend on today's date; the examples must be otherwise clean.
    expect(warnings.filter((w) => !w.includes(".validUntil: token"))).toEqual([]);
  });

  it("office (office + mikrotik) is accepted", () => {
    const { config, warnings } = loadConfig(exampleConfig("office"));
    expect(config.sites).toEqual(["office", "mikrotik"]);
    expect(config.mikrotik?.vlanId).toBe(10);
    expect(config.aws).toBeUndefined();
    // Token expiry warnings depend on today's date; the examples must be otherwise clean.
    expect(warnings.filter((w) => !w.includes(".validUntil: token"))).toEqual([]);
  });
});

describe("defaults", () => {
  it("a minimal aws stack gets the documented defaults", () => {
    const { config } = loadConfig({
      "attic-infra:sites": '["aws"]',
      "attic-infra:attic": JSON.stringify({
        image: "ghcr.io/zhaofengli/attic:b7c905657cb81b8ec9c26b0d9f53aa2e4f231810",
        caches: [{ name: "main" }],
      }),
      "attic-infra:aws": JSON.stringify({
        hostname: "cache.example.org",
        certificateArn: "arn:aws:acm:us-east-1:1:certificate/x",
      }),
    });
    expect(config.attic?.caches[0]).toEqual({
      name: "main",
      public: false,
      priority: 41,
      upstreamCacheKeyNames: ["cache.nixos.org-1"],
      destroyOnDelete: false,
    });
    expect(config.attic?.chunking).toEqual({
      narSizeThreshold: 65536,
      minSize: 16384,
      avgSize: 65536,
      maxSize: 262144,
    });
    expect(config.attic?.compression).toEqual({ type: "zstd" });
    expect(config.attic?.garbageCollection).toEqual({ interval: "12 hours", defaultRetention: "90 days" });
    expect(config.aws?.network).toEqual({
      mode: "create",
      cidr: "10.60.0.0/16",
      azs: 2,
      egress: "public-ip",
    });
    expect(config.aws?.database).toMatchObject({
      mode: "dedicated",
      instanceClass: "db.t4g.micro",
      engineVersion: "16",
    });
    expect(config.aws?.loadBalancer).toMatchObject({
      mode: "dedicated",
      allowedCidrs: ["0.0.0.0/0"],
      idleTimeoutSeconds: 3600,
    });
    expect(config.aws?.service).toMatchObject({
      cpu: 512,
      memory: 1024,
      minTasks: 1,
      maxTasks: 3,
      cpuArchitecture: "ARM64",
    });
    expect(config.aws?.gc).toBe("scheduled");
  });

  it("an office stack defaults to local storage, port 22 and a 180 s rollback", () => {
    const { config } = loadEdited("office", (b) => {
      delete b["attic-infra:office"].storage;
      delete b["attic-infra:office"].port;
      delete b["attic-infra:office"].rollbackTimeoutSeconds;
    });
    expect(config.office?.storage).toEqual({
      type: "local",
      path: "/var/lib/atticd/storage",
      device: undefined,
    });
    expect(config.office?.port).toBe(22);
    expect(config.office?.rollbackTimeoutSeconds).toBe(180);
  });
});

describe("rejections name the full key path", () => {
  it("a VLAN id out of range", () => {
    expect(problemsAfter("office", (b) => (b["attic-infra:mikrotik"].vlanId = 5000))).toEqual([
      "attic-infra:mikrotik.vlanId: 5000 is out of range for a VLAN id (1-4094)",
    ]);
  });

  it("a site listed without its block", () => {
    expect(problemsAfter("dev", (b) => (b["attic-infra:sites"] = ["aws", "mikrotik"]))).toEqual([
      expect.stringMatching(/^attic-infra:mikrotik: is required because sites lists mikrotik/),
    ]);
  });

  it("a site that is not one of aws, office, vps, mikrotik, or listed twice", () => {
    expect(problemsAfter("dev", (b) => (b["attic-infra:sites"] = ["aws", "aws", "gcp"]))).toEqual([
      'attic-infra:sites[2]: "gcp" is not a site; use aws, office, vps or mikrotik',
    ]);
    expect(problemsAfter("dev", (b) => (b["attic-infra:sites"] = ["aws", "aws"]))).toEqual([
      'attic-infra:sites[1]: "aws" is listed twice',
    ]);
  });

  it("a token naming an undeclared cache", () => {
    const problems = problemsAfter(
      "dev",
      (b) => (b["attic-infra:attic"].tokens[0].permissions = { other: ["pull"] }),
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^attic-infra:attic\.tokens\[0\]\.permissions\.other: "other" matches no cache declared/,
      ),
    ]);
  });

  it("a token glob must match a declared cache, and a matching glob is accepted", () => {
    expect(
      problemsAfter("dev", (b) => (b["attic-infra:attic"].tokens[0].permissions = { "n3x*": ["pull"] })),
    ).toEqual([]);
    expect(
      problemsAfter("dev", (b) => (b["attic-infra:attic"].tokens[0].permissions = { "x-*": ["pull"] }))[0],
    ).toMatch(/^attic-infra:attic\.tokens\[0\]\.permissions\["x-\*"\]: "x-\*" matches no cache/);
  });

  it("a glob with ? is refused: atticd would ignore the whole token (only * is a wildcard)", () => {
    expect(
      problemsAfter("dev", (b) => (b["attic-infra:attic"].tokens[0].permissions = { "n3?": ["pull"] })),
    ).toEqual([
      'attic-infra:attic.tokens[0].permissions["n3?"]: "n3?" uses ?, which atticd does not accept in a token (only * is a wildcard): it would ignore the whole token and treat its holder as anonymous; write a glob with * or list the caches',
    ]);
    expect(
      problemsAfter("dev", (b) => (b["attic-infra:attic"].tokens[0].permissions = { "n3x.*": ["pull"] })),
    ).toEqual([
      'attic-infra:attic.tokens[0].permissions["n3x.*"]: "n3x.*" is neither a cache name nor a glob like n3x-* (a letter, digit or *, then up to 49 of A-Z a-z 0-9 - _ + *)',
    ]);
  });

  it("push without pull on a private cache is refused: attic push reads the cache's config first", () => {
    const withCaches = (b: Blocks, permissions: Record<string, string[]>) => {
      b["attic-infra:attic"].caches = [
        { name: "n3x", public: true },
        { name: "secret" },
        { name: "secret-b" },
      ];
      b["attic-infra:attic"].tokens[0].permissions = permissions;
    };
    expect(problemsAfter("dev", (b) => withCaches(b, { "secret*": ["push"], n3x: ["push"] }))).toEqual([
      'attic-infra:attic.tokens[0].permissions["secret*"]: grants push on the private cache "secret" but nothing grants pull there: attic push and attic use read the cache\'s configuration first, which needs pull (atticd answers 403), so the token could not push; add pull',
      'attic-infra:attic.tokens[0].permissions["secret*"]: grants push on the private cache "secret-b" but nothing grants pull there: attic push and attic use read the cache\'s configuration first, which needs pull (atticd answers 403), so the token could not push; add pull',
    ]);
    // Pull from another key covering the cache is enough; a public cache needs none.
    expect(problemsAfter("dev", (b) => withCaches(b, { "secret*": ["push"], "*": ["pull"] }))).toEqual([]);
    expect(problemsAfter("dev", (b) => withCaches(b, { n3x: ["push"] }))).toEqual([]);
  });

  it("a cache's retention above 2147483647 s is refused (atticd stores it as i32)", () => {
    expect(problemsAfter("dev", (b) => (b["attic-infra:attic"].caches[0].retention = "100 years"))).toEqual([
      "attic-infra:attic.caches[0].retention: \"100 years\" is 3155760000 s; atticd keeps a cache's retention as a 32-bit signed number of seconds, at most 2147483647 s (about 68 years): use a shorter period, or leave retention unset for the server's default",
    ]);
    expect(problemsAfter("dev", (b) => (b["attic-infra:attic"].caches[0].retention = "68 years"))).toEqual(
      [],
    );
  });

  it("an unknown permission", () => {
    expect(
      problemsAfter("dev", (b) => (b["attic-infra:attic"].tokens[0].permissions = { n3x: ["admin"] })),
    ).toEqual([
      expect.stringMatching(
        /^attic-infra:attic\.tokens\[0\]\.permissions\.n3x\[0\]: "admin" is not a permission; use one of pull, push/,
      ),
    ]);
  });

  it("minTasks greater than maxTasks", () => {
    expect(
      problemsAfter("dev", (b) => Object.assign(b["attic-infra:aws"].service, { minTasks: 4, maxTasks: 2 })),
    ).toEqual(["attic-infra:aws.service.minTasks: 4 is greater than maxTasks 2"]);
  });

  it("fewer days of backups than the policy pack accepts, from the one shared minimum", () => {
    expect(MIN_BACKUP_RETENTION_DAYS).toBe(7);
    const days = (n: number) =>
      problemsAfter("dev", (b) => (b["attic-infra:aws"].database.backupRetentionDays = n));
    expect(days(6)).toEqual([
      "attic-infra:aws.database.backupRetentionDays: 6 is below 7, the fewest days of backups the policy pack accepts (policy/minimums.ts); use 7-35",
    ]);
    expect(days(36)).toEqual([
      "attic-infra:aws.database.backupRetentionDays: 36 is above 35, the most days of backups RDS keeps",
    ]);
    expect(days(MIN_BACKUP_RETENTION_DAYS)).toEqual([]);
  });

  it("a partial secret ARN for an existing database (ECS needs the full one, with its 6-character suffix)", () => {
    const withSecret = (arn: string) =>
      problemsAfter("dev", (b) => {
        b["attic-infra:aws"].database = {
          existing: { host: "pg.corp.internal", name: "attic", user: "attic", passwordSecretArn: arn },
        };
      });
    const partial = "arn:aws:secretsmanager:us-east-1:123456789012:secret:attic-db";
    expect(withSecret(partial)).toEqual([
      `attic-infra:aws.database.existing.passwordSecretArn: "${partial}" is not a full secret ARN: it must end in -<6 characters> (arn:aws:secretsmanager:<region>:<account>:secret:<name>-AbCdEf); ECS needs the full ARN. Look it up: aws secretsmanager describe-secret --secret-id <name> --query ARN`,
    ]);
    expect(withSecret(`${partial}-AbC1`)).toHaveLength(1);
    expect(withSecret(`${partial}-AbC12f`)).toEqual([]);
    expect(
      withSecret("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:team/attic_db-x9Y8z7"),
    ).toEqual([]);
  });

  it("chunk sizes out of order", () => {
    expect(problemsAfter("dev", (b) => (b["attic-infra:attic"].chunking.minSize = 100000))).toEqual([
      "attic-infra:attic.chunking: minSize 100000, avgSize 65536, maxSize 262144 are out of order; need minSize <= avgSize <= maxSize",
    ]);
  });

  it("an apiEndpoint without a trailing slash", () => {
    expect(
      problemsAfter("office", (b) => (b["attic-infra:office"].apiEndpoint = "http://attic.lan:8080")),
    ).toEqual([
      'attic-infra:office.apiEndpoint: "http://attic.lan:8080" must end with "/" (atticd requires it); write "http://attic.lan:8080/"',
    ]);
  });

  it("a DHCP pool outside the gateway's subnet", () => {
    expect(
      problemsAfter("office", (b) => (b["attic-infra:mikrotik"].dhcp.pool = "10.0.0.100-10.0.1.20")),
    ).toEqual(['attic-infra:mikrotik.dhcp.pool: "10.0.1.20" is outside the gateway\'s subnet 10.0.0.0/24']);
  });

  it("a static lease outside the gateway's subnet", () => {
    expect(
      problemsAfter("office", (b) => (b["attic-infra:mikrotik"].dhcp.leases[0].address = "192.168.1.10")),
    ).toEqual([
      'attic-infra:mikrotik.dhcp.leases[0].address: "192.168.1.10" is outside the gateway\'s subnet 10.0.0.0/24',
    ]);
  });

  it("a gateway address whose subnet does not hold the pool and leases", () => {
    const problems = problemsAfter("office", (b) => (b["attic-infra:mikrotik"].address = "10.1.0.1/24"));
    expect(problems).toEqual([
      'attic-infra:mikrotik.dhcp.pool: "10.0.0.100" is outside the gateway\'s subnet 10.1.0.0/24',
      'attic-infra:mikrotik.dhcp.pool: "10.0.0.199" is outside the gateway\'s subnet 10.1.0.0/24',
      'attic-infra:mikrotik.dhcp.leases[0].address: "10.0.0.10" is outside the gateway\'s subnet 10.1.0.0/24',
    ]);
  });

  it("the management port among the access ports", () => {
    expect(problemsAfter("office", (b) => b["attic-infra:mikrotik"].accessPorts.push("ether24"))).toEqual([
      'attic-infra:mikrotik.accessPorts[4]: "ether24" is the management port; it cannot be an access port (its PVID would move to the cache VLAN and you would lose access to the switch)',
    ]);
  });

  it("both dns and certificateArn, or neither", () => {
    expect(
      problemsAfter(
        "dev",
        (b) => (b["attic-infra:aws"].certificateArn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"),
      ),
    ).toEqual(["attic-infra:aws: sets both dns and certificateArn; keep exactly one"]);
    expect(problemsAfter("dev", (b) => delete b["attic-infra:aws"].dns)).toEqual([
      "attic-infra:aws: needs a TLS certificate: set dns.zoneName (Route53 + ACM) or certificateArn",
    ]);
  });

  it("an unpinned image", () => {
    expect(
      problemsAfter("dev", (b) => (b["attic-infra:attic"].image = "ghcr.io/zhaofengli/attic:latest"))[0],
    ).toMatch(/^attic-infra:attic\.image: "ghcr\.io\/zhaofengli\/attic:latest" is not pinned/);
    expect(
      problemsAfter("dev", (b) => (b["attic-infra:attic"].image = "ghcr.io/zhaofengli/attic"))[0],
    ).toMatch(/^attic-infra:attic\.image: .* is not pinned/);
    expect(
      problemsAfter(
        "dev",
        (b) => (b["attic-infra:attic"].image = `ghcr.io/zhaofengli/attic@sha256:${"a".repeat(64)}`),
      ),
    ).toEqual([]);
  });

  it("an unknown key, with the keys that are known there", () => {
    expect(problemsAfter("dev", (b) => (b["attic-infra:aws"].servce = {}))).toEqual([
      expect.stringMatching(
        /^attic-infra:aws\.servce: unknown key; known keys here: hostname, dns, certificateArn, network/,
      ),
    ]);
    expect(problemsAfter("dev", (b) => (b["attic-infra:region"] = "x"))).toEqual([
      "attic-infra:region: unknown key; known keys: sites, attic, aws, office, vps, mikrotik",
    ]);
  });

  it("a missing host key unless insecureIgnoreHostKey is set", () => {
    expect(problemsAfter("office", (b) => delete b["attic-infra:office"].hostKey)).toEqual([
      expect.stringMatching(/^attic-infra:office\.hostKey: is required: pin the host's key/),
    ]);
    expect(
      problemsAfter("office", (b) => {
        delete b["attic-infra:office"].hostKey;
        b["attic-infra:office"].insecureIgnoreHostKey = true;
      }),
    ).toEqual([]);
  });

  it("a duration atticd would not parse", () => {
    expect(problemsAfter("dev", (b) => (b["attic-infra:attic"].garbageCollection.interval = "12"))).toEqual([
      'attic-infra:attic.garbageCollection.interval: "12" is not a duration atticd understands; write it like "12 hours", "90 days" or "0s"',
    ]);
  });

  it("an invalid Fargate CPU/memory pair", () => {
    expect(problemsAfter("dev", (b) => (b["attic-infra:aws"].service.memory = 512))).toEqual([
      "attic-infra:aws.service.memory: 512 MiB is not valid with cpu 512; use 1024-4096 in steps of 1024",
    ]);
  });

  it("every problem at once, one line each", () => {
    const problems = problemsAfter("office", (b) => {
      b["attic-infra:mikrotik"].vlanId = 0;
      b["attic-infra:office"].port = "ssh";
      b["attic-infra:attic"].caches[0].name = "-bad";
      b["attic-infra:attic"].compression.type = "lz4";
    });
    expect(problems.map((p) => p.split(":").slice(0, 2).join(":"))).toEqual([
      "attic-infra:attic.caches[0].name",
      "attic-infra:attic.compression.type",
      // The tokens name n3x, which the edit renamed: they now match no cache, a problem of its own.
      "attic-infra:attic.tokens[0].permissions.n3x",
      "attic-infra:attic.tokens[1].permissions.n3x",
      "attic-infra:office.port",
      "attic-infra:mikrotik.vlanId",
    ]);
    expect(problems.every((p) => !p.includes("\n"))).toBe(true);
  });

  it("missing required keys say so", () => {
    expect(problemsAfter("office", (b) => delete b["attic-infra:mikrotik"].managementPort)).toEqual([
      "attic-infra:mikrotik.managementPort: is required",
    ]);
  });
});

describe("one invalid value never hides another problem", () => {
  const keys = (problems: string[]) => problems.map((p) => p.split(": ")[0]);

  it("a token naming an undeclared cache is reported although a cache name is invalid", () => {
    const problems = problemsAfter("office", (b) => {
      b["attic-infra:attic"].caches.push({ name: 5 });
      b["attic-infra:attic"].tokens[0].permissions = { nope: ["pull"] };
    });
    expect(keys(problems)).toEqual([
      "attic-infra:attic.caches[1].name",
      "attic-infra:attic.tokens[0].permissions.nope",
    ]);
    expect(problems[1]).toContain('"nope" matches no cache declared');
  });

  it("cross-field checks of the office and the switch run although another field has the wrong type", () => {
    const problems = problemsAfter("office", (b) => {
      delete b["attic-infra:office"].hostKey;
      b["attic-infra:office"].port = "ssh";
      b["attic-infra:mikrotik"].vlanId = "ten";
      b["attic-infra:mikrotik"].accessPorts = [b["attic-infra:mikrotik"].managementPort];
    });
    expect(keys(problems)).toEqual([
      "attic-infra:office.port",
      "attic-infra:office.hostKey",
      "attic-infra:mikrotik.vlanId",
      "attic-infra:mikrotik.accessPorts[0]",
    ]);
    expect(problems[3]).toContain("is the management port");
  });

  it("the aws certificate rule runs although a service field has the wrong type", () => {
    const problems = problemsAfter("dev", (b) => {
      delete b["attic-infra:aws"].dns;
      b["attic-infra:aws"].service = { cpu: "lots" };
    });
    expect(keys(problems)).toEqual(["attic-infra:aws.service.cpu", "attic-infra:aws"]);
    expect(problems[1]).toContain("needs a TLS certificate");
  });

  it("a site listed without its block is reported although another listed site is misspelled", () => {
    const problems = problemsAfter("dev", (b) => {
      b["attic-infra:sites"] = ["aws", "ofice"];
      delete b["attic-infra:aws"];
    });
    expect(keys(problems)).toEqual(["attic-infra:sites[1]", "attic-infra:aws"]);
  });

  it("values of the wrong type never produce a second, misleading message", () => {
    const problems = problemsAfter("office", (b) => {
      b["attic-infra:attic"].chunking = { minSize: "big" };
      b["attic-infra:attic"].compression = { type: "lz4", level: 3 };
      b["attic-infra:attic"].caches = "main";
      b["attic-infra:mikrotik"].dhcp = { pool: 7, leases: "none" };
      b["attic-infra:mikrotik"].address = 10;
    });
    expect(keys(problems)).toEqual([
      "attic-infra:attic.caches",
      "attic-infra:attic.compression.type",
      "attic-infra:attic.chunking.minSize",
      "attic-infra:mikrotik.address",
      "attic-infra:mikrotik.dhcp.pool",
      "attic-infra:mikrotik.dhcp.leases",
    ]);
  });
});

describe("warnings", () => {
  it(".local names are flagged as mDNS", () => {
    const { warnings } = loadEdited("office", (b) => {
      b["attic-infra:mikrotik"].dns.records[0].name = "attic.local";
      b["attic-infra:office"].apiEndpoint = "http://attic.local:8080/";
    });
    expect(warnings).toEqual([
      expect.stringMatching(
        /^attic-infra:office\.apiEndpoint: "attic\.local" is in \.local, the mDNS domain/,
      ),
      expect.stringMatching(/^attic-infra:mikrotik\.dns\.records\[0\]\.name: "attic\.local" is in \.local/),
    ]);
  });

  it("an expired token, or one expiring within 30 days, is flagged", () => {
    const soon = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
    const { warnings } = loadEdited("office", (b) => {
      b["attic-infra:attic"].tokens[0].validUntil = "2020-01-01";
      b["attic-infra:attic"].tokens[1].validUntil = soon;
    });
    expect(warnings).toEqual([
      "attic-infra:attic.tokens[0].validUntil: token ci expired on 2020-01-01; atticd treats it as anonymous. Set a later date",
      `attic-infra:attic.tokens[1].validUntil: token developers expires on ${soon}, within 30 days`,
    ]);
  });

  it("a block for a site that is not selected is ignored with a warning", () => {
    const { config, warnings } = loadEdited("office", (b) => (b["attic-infra:sites"] = ["mikrotik"]));
    expect(config.office).toBeUndefined();
    expect(warnings).toContain("attic-infra:office: is set but sites does not list office; it is ignored");
  });
});

describe("humantime durations", () => {
  it("parses the forms atticd's humantime accepts", () => {
    expect(parseHumantime("12 hours")).toBe(43200);
    expect(parseHumantime("90 days")).toBe(7776000);
    expect(parseHumantime("1h 30m")).toBe(5400);
    expect(parseHumantime("2h37min")).toBe(9420);
    expect(parseHumantime("0s")).toBe(0);
  });

  it("rejects a number without a unit and unknown units", () => {
    expect(parseHumantime("12")).toBeUndefined();
    expect(parseHumantime("10 nights")).toBeUndefined();
    expect(parseHumantime("")).toBeUndefined();
  });
});

describe("the README's config reference", () => {
  /** Every key the schema accepts, as dotted paths (arrays as name[]). */
  function keyPaths(schema: unknown, prefix: string, out: string[] = []): string[] {
    for (const key of objectKeys(schema) ?? []) {
      const p = prefix ? `${prefix}.${key}` : key;
      out.push(p);
      const child = (
        objectKeys(schema, [key]) ? [key] : objectKeys(schema, [key, 0]) ? [key, 0] : undefined
      ) as PropertyKey[] | undefined;
      if (child) keyPaths(childSchema(schema, child), child.length === 2 ? `${p}[]` : p, out);
    }
    return out;
  }
  function childSchema(schema: unknown, p: PropertyKey[]): unknown {
    let s: any = schema;
    for (const step of p) {
      for (let i = 0; i < 10 && !["object", "array"].includes(s._zod.def.type); i++)
        s = s._zod.def.innerType ?? s._zod.def.in ?? s._zod.def.schema;
      s = s._zod.def.type === "object" ? s._zod.def.shape[String(step)] : s._zod.def.element;
    }
    return s;
  }
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
  const section = (block: string) => {
    const start = readme.indexOf(`### \`attic-infra:${block}\``);
    const end = readme.indexOf("\n### ", start + 1);
    return readme.slice(start, end === -1 ? undefined : end);
  };
  /** Words inside backticks: `a.b`, `{ host, port }`, `caches[].name` give a, b, host, port, caches, name. */
  const documented = (text: string) =>
    new Set([...text.matchAll(/`([^`]+)`/g)].flatMap((m) => m[1]!.split(/[^A-Za-z0-9]+/)).filter(Boolean));

  it.each([
    ["attic", atticSchema],
    ["aws", awsSchema],
    ["office", officeSchema],
    ["vps", vpsSchema],
    ["mikrotik", mikrotikSchema],
  ] as const)("documents every key of attic-infra:%s", (block, schema) => {
    const words = documented(section(block));
    const paths = keyPaths(schema, "");
    for (const [either, [dedicated, existing]] of Object.entries(EITHER_BLOCKS)) {
      if (!either.startsWith(`${block}.`)) continue;
      const at = either.slice(block.length + 1);
      paths.push(...keyPaths(dedicated, at), `${at}.existing`, ...keyPaths(existing, `${at}.existing`));
    }
    expect(paths.length).toBeGreaterThan(5);
    const missing = paths.filter((p) => !words.has(p.split(".").at(-1)!.replace("[]", "")));
    expect(missing).toEqual([]);
  });
});
