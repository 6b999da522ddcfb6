import { parse } from "smol-toml";
import { describe, expect, it } from "vitest";
import {
  ATTICD_KNOWN_KEYS,
  type AtticSettings,
  atticSettings,
  postgresUrl,
  renderToml,
} from "../../components/attic/settings";
import { loadConfig } from "../../config/load";
import { exampleConfig, synthExample } from "../support/stacks";
import { SECRET_MARKER } from "../../ci/commands/synth/mocks";

/** Every key in a parsed TOML document must be one atticd's config accepts (deny_unknown_fields). */
function unknownKeys(doc: Record<string, unknown>, table = ""): string[] {
  const known = ATTICD_KNOWN_KEYS[table];
  if (!known) return [`[${table}]`];
  const out: string[] = [];
  for (const [k, v] of Object.entries(doc)) {
    const path = table ? `${table}.${k}` : k;
    if (!known.includes(k)) out.push(path);
    else if (v !== null && typeof v === "object" && !Array.isArray(v) && k !== "credentials")
      out.push(...unknownKeys(v as Record<string, unknown>, path));
  }
  return out;
}

const attic = loadConfig(exampleConfig("dev")).config.attic!;
const awsFacts = {
  kind: "aws" as const,
  hostname: "attic.example.com",
  database: { user: "attic", host: "db.example.internal", port: 5432, name: "attic" },
  bucket: { region: "us-east-1", bucket: "attic-chunks" },
  tokenPublicKeyPem: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
};

describe("atticd settings", () => {
  it("AWS: S3, PostgreSQL without a password and sslmode=require, only the public key, empty allowed-hosts", () => {
    const s = atticSettings(attic, awsFacts);
    expect(s.database).toEqual({
      url: "postgresql://attic@db.example.internal:5432/attic?sslmode=require",
      heartbeat: true,
    });
    expect(s.storage).toEqual({ type: "s3", region: "us-east-1", bucket: "attic-chunks" });
    expect(s["allowed-hosts"]).toEqual([]);
    expect(s["api-endpoint"]).toBe("https://attic.example.com/");
    expect(Object.keys(s.jwt!.signing)).toEqual(["token-rs256-pubkey-base64"]);
    expect(Buffer.from(s.jwt!.signing["token-rs256-pubkey-base64"], "base64").toString()).toBe(
      awsFacts.tokenPublicKeyPem,
    );
  });

  it("office: SQLite, local storage, no [jwt] (the private key comes from the environment file)", () => {
    const s = atticSettings(attic, {
      kind: "office",
      apiEndpoint: "http://attic.lan:8080/",
      listen: "[::]:8080",
      storage: { type: "local", path: "/var/lib/atticd/storage" },
    });
    expect(s.database.url).toBe("sqlite:///var/lib/atticd/server.db?mode=rwc");
    expect(s.jwt).toBeUndefined();
    expect(s["api-endpoint"]).toBe("http://attic.lan:8080/");
  });

  it("vps: loopback listen, allowed-hosts and api-endpoint from the domain, PostgreSQL over the socket, no [jwt]", () => {
    const s = atticSettings(attic, {
      kind: "vps",
      domain: "cache.example.com",
      listen: "127.0.0.1:8080",
      database: "postgresql",
      storage: {
        type: "s3",
        region: "eu-central-003",
        bucket: "b",
        endpoint: "https://s3.eu-central-003.backblazeb2.com",
      },
    });
    expect(s.listen).toBe("127.0.0.1:8080");
    expect(s["allowed-hosts"]).toEqual(["cache.example.com"]);
    expect(s["api-endpoint"]).toBe("https://cache.example.com/");
    expect(s.database).toEqual({ url: "postgresql:///atticd?host=/run/postgresql", heartbeat: true });
    expect(s.jwt).toBeUndefined();
    expect(unknownKeys(parse(renderToml(s)))).toEqual([]);
  });

  it("percent-encodes the database user and name (atticd panics on an unparsable URL)", () => {
    expect(postgresUrl({ user: "at@tic", host: "h", port: 5432, name: "a/b" })).toBe(
      "postgresql://at%40tic@h:5432/a%2Fb?sslmode=require",
    );
  });

  it("renders TOML that parses back to the same settings, with only keys atticd knows", () => {
    const s = atticSettings(attic, awsFacts);
    const doc = parse(renderToml(s));
    expect(doc).toEqual(s as unknown as Record<string, unknown>);
    expect(unknownKeys(doc)).toEqual([]);
    for (const key of ["database", "storage", "chunking"]) expect(doc).toHaveProperty(key);
    expect(Object.keys(doc.chunking as object).sort()).toEqual([
      "avg-size",
      "max-size",
      "min-size",
      "nar-size-threshold",
    ]);
  });

  it("the checker itself flags a key atticd would reject", () => {
    expect(
      unknownKeys({ listen: "x", "token-hs256-secret-base64": "y", storage: { type: "s3", bogus: 1 } }),
    ).toEqual(["token-hs256-secret-base64", "storage.bogus"]);
  });
});

describe("synth writes each role's TOML", () => {
  it("office: monolithic TOML, parseable, known keys only, no secret", async () => {
    const { files } = await synthExample("office", true);
    const toml = files["office/atticd-monolithic.toml"]!;
    const doc = parse(toml) as unknown as AtticSettings;
    expect(unknownKeys(doc as unknown as Record<string, unknown>)).toEqual([]);
    expect(doc.storage).toEqual({ type: "local", path: "/var/lib/atticd/storage" });
    expect(toml).not.toContain(SECRET_MARKER);
    expect(toml).not.toContain("PRIVATE KEY");
  });

  it("aws: api-server and garbage-collector TOML, parseable, known keys only, no secret", async () => {
    const { files } = await synthExample("dev", true);
    for (const role of ["api-server", "garbage-collector"]) {
      const toml = files[`aws/atticd-${role}.toml`]!;
      const doc = parse(toml) as unknown as AtticSettings;
      expect(unknownKeys(doc as unknown as Record<string, unknown>)).toEqual([]);
      expect(doc.database.url).toMatch(/^postgresql:\/\/attic@[^:/]+:5432\/attic\?sslmode=require$/);
      expect(doc["api-endpoint"]).toBe("https://attic.example.com/");
      expect(toml).not.toContain(SECRET_MARKER);
      expect(toml).not.toContain("PRIVATE KEY");
    }
  });
});
