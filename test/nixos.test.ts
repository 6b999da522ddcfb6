/**
 * The Nix text generation, checked by the real Nix evaluator (`nix-instantiate` from Debian's
 * nix-bin): what we write parses, and evaluates to exactly the values we meant. Not proven here:
 * that a NixOS system builds with the module (no nixpkgs or NixOS host here); the module's options
 * are the ones nixpkgs' services.atticd declares (checked against its source by hand).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse as parseToml } from "smol-toml";
import { beforeAll, describe, expect, it } from "vitest";
import { backupScript, officeModule, officeModuleConfig } from "../nixos/office";
import { removedModule } from "../nixos/shared";
import { NixExpr, type NixValue, nixAttrName, nixExpr, nixString, toNix } from "../nixos/nix";
import { type SynthResult, synth } from "../ci/commands/synth/harness";
import { SECRET_MARKER } from "../ci/commands/synth/mocks";
import { exampleBlocks, synthExample, toConfigMap } from "./support/stacks";
import { haveTool } from "./support/tools";

const dir = mkdtempSync(path.join(tmpdir(), "nix-"));
let n = 0;
function nixFile(text: string): string {
  const file = path.join(dir, `f${n++}.nix`);
  writeFileSync(file, text);
  return file;
}
const PKGS_STUB =
  '{ curl = "pkgs.curl"; sqlite = "pkgs.sqlite"; coreutils = "pkgs.coreutils"; findutils = "pkgs.findutils"; }';

function evalJson(expr: string): unknown {
  return JSON.parse(
    execFileSync("nix-instantiate", ["--eval", "--strict", "--json", "-E", expr], { encoding: "utf8" }),
  );
}
function evalFile(text: string): unknown {
  return evalJson(`import ${nixFile(text)}`);
}
function parses(text: string): void {
  execFileSync("nix-instantiate", ["--parse", nixFile(text)], { stdio: ["ignore", "ignore", "pipe"] });
}
/** Raw expressions in a value, as the stub pkgs evaluates them. */
function stubbed(value: unknown): unknown {
  if (value instanceof NixExpr) return value.text;
  if (Array.isArray(value)) return value.map(stubbed);
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, stubbed(v)]),
    );
  return value;
}

const HOSTILE = [
  'say "hi"',
  "back\\slash \\n not a newline",
  '${builtins.abort "interpolated"}',
  "$${not} $ {x} ${",
  "two '' quotes and ''${x} and '''",
  "multi\nline\nwith ${x} and '' inside\n",
  "  leading spaces\n  on every line\n",
  "tab\there and\r\ncarriage return",
  "\nstarts with a newline",
  "ends with backslash \\",
  "unicode: üñí ✓ 😀",
  "",
  "/nix/store/not-a-path-literal",
];

describe.skipIf(!haveTool("nix-instantiate"))("Nix rendering, checked by nix-instantiate", () => {
  it("hostile strings round-trip exactly", () => {
    expect(evalFile(toNix(HOSTILE))).toEqual(HOSTILE);
  });

  it("hostile strings round-trip inside nested attribute sets too", () => {
    const value = { outer: { list: HOSTILE, inner: { s: HOSTILE[5]! } } };
    expect(evalFile(toNix(value))).toEqual(value);
  });

  it("attribute names that are not identifiers are quoted and round-trip", () => {
    const value = Object.fromEntries(
      ["plain", "with-dash", "a.b", "with", "in", "1abc", "a b", "", "${x}", 'q"uote', "x'y"].map((k) => [
        k,
        k,
      ]),
    );
    expect(evalFile(toNix(value))).toEqual(value);
  });

  it("lists, integers (negative too), booleans and empty containers", () => {
    const value = { ints: [0, 1, -5, 9007199254740991], yes: true, no: false, empty: [], none: {} };
    expect(evalFile(toNix(value))).toEqual(value);
  });

  it("the generated module parses", () => {
    parses(officeModule(moduleOptions()));
    parses(removedModule("office"));
  });
});

describe("Nix rendering rules", () => {
  it("refuses null and undefined values, and non-integers", () => {
    expect(() => toNix(null)).toThrow(/null\/undefined/);
    expect(() => toNix([1, undefined as unknown as NixValue])).toThrow(/null\/undefined/);
    expect(() => toNix(1.5)).toThrow(/not an integer/);
  });

  it("omits undefined attributes (optional settings) rather than writing null", () => {
    expect(toNix({ a: 1, b: undefined })).toBe("{\n  a = 1;\n}");
  });

  it("quotes attribute names only when needed", () => {
    expect(nixAttrName("nar-size-threshold")).toBe("nar-size-threshold");
    expect(nixAttrName("atticd-backup")).toBe("atticd-backup");
    expect(nixAttrName("/var/lib/x")).toBe('"/var/lib/x"');
    expect(nixAttrName("inherit")).toBe('"inherit"');
  });

  it("absolute paths stay strings, never path literals", () => {
    expect(toNix("/var/lib/atticd/storage")).toBe('"/var/lib/atticd/storage"');
    expect(nixString("${x}")).toBe('"\\${x}"');
  });

  it("raw expressions are written as they are", () => {
    expect(toNix([nixExpr("pkgs.curl")])).toBe("[\n  pkgs.curl\n]");
  });
});

function moduleOptions() {
  return {
    settings: {
      listen: "[::]:8080",
      "allowed-hosts": [],
      "api-endpoint": "http://attic.lan:8080/",
      "soft-delete-caches": false,
      "require-proof-of-possession": true,
      database: { url: "sqlite:///var/lib/atticd/server.db?mode=rwc", heartbeat: false },
      storage: { type: "local" as const, path: "/var/lib/atticd/storage" },
      chunking: { "nar-size-threshold": 65536, "min-size": 16384, "avg-size": 65536, "max-size": 262144 },
      compression: { type: "zstd" as const },
      "garbage-collection": { interval: "12 hours", "default-retention-period": "90 days" },
    },
    port: 8080,
    openFirewall: true,
    storageDevice: "/dev/disk/by-label/attic-storage",
    backup: { dir: "/var/backup/atticd", keep: 14 },
    stack: "office",
  };
}

describe.skipIf(!haveTool("nix-instantiate"))("the office example's module (synth), evaluated", () => {
  let office: SynthResult;
  let settings: unknown;
  beforeAll(async () => {
    office = await synthExample("office", true);
    settings = parseToml(office.files["office/atticd-monolithic.toml"]!);
  });

  const evalModule = (text: string, attr: string) =>
    evalJson(`(import ${nixFile(text)} { pkgs = ${PKGS_STUB}; }).${attr}`);

  it("services.atticd.settings evaluates to the settings computed in TypeScript", () => {
    expect(evalModule(office.files["office/atticd.nix"]!, "services.atticd.settings")).toEqual(settings);
  });

  it("the whole module evaluates to the attribute set TypeScript meant", () => {
    const expected = stubbed(officeModuleConfig(moduleOptions()));
    expect(evalFile(`(${officeModule(moduleOptions())}) { pkgs = ${PKGS_STUB}; }`)).toEqual(expected);
  });

  it("uses nixpkgs' options: monolithic, an environment file outside the store, no credentialsFile", () => {
    const atticd = evalModule(office.files["office/atticd.nix"]!, "services.atticd") as Record<
      string,
      unknown
    >;
    expect(Object.keys(atticd).sort()).toEqual(["enable", "environmentFile", "mode", "settings"]);
    expect(atticd).toMatchObject({
      enable: true,
      mode: "monolithic",
      environmentFile: "/var/lib/attic-infra/atticd.env",
    });
  });

  it("opens the listen port, mounts the storage device (ext4, noatime) where DynamicUser keeps state, nofail so a dead disk leaves the host reachable while atticd requires the mount", () => {
    const text = office.files["office/atticd.nix"]!;
    expect(evalModule(text, "networking.firewall.allowedTCPPorts")).toEqual([8080]);
    expect(evalModule(text, "fileSystems")).toEqual({
      "/var/lib/private/atticd/storage": {
        device: "/dev/disk/by-label/attic-storage",
        fsType: "ext4",
        options: ["noatime", "nofail", "x-systemd.device-timeout=30s"],
      },
    });
    expect(evalModule(text, "systemd.services.atticd.unitConfig.RequiresMountsFor")).toEqual([
      "/var/lib/private/atticd/storage",
    ]);
  });

  it("backs the SQLite database up daily with sqlite3 .backup, keeping the configured number", () => {
    const text = office.files["office/atticd.nix"]!;
    expect(evalModule(text, "systemd.timers.atticd-backup.timerConfig.OnCalendar")).toBe("daily");
    const script = evalModule(text, "systemd.services.atticd-backup.script") as string;
    expect(script).toBe(backupScript({ dir: "/var/backup/atticd", keep: 14 }));
    expect(script).toContain(`db='/var/lib/atticd/server.db'`);
  });

  it("holds no secret: no signing key, no fake secret marker", () => {
    const text = office.files["office/atticd.nix"]!;
    expect(text).not.toContain(SECRET_MARKER);
    expect(text).not.toContain("PRIVATE KEY");
    expect(text).not.toContain("ATTIC_SERVER_TOKEN");
    expect(JSON.stringify(evalModule(text, "services.atticd.settings"))).not.toContain("jwt");
  });

  it("S3-compatible storage: endpoint in settings, keys only in the environment file", async () => {
    const blocks = exampleBlocks("office") as Record<string, any>;
    blocks["attic-infra:office"].storage = {
      s3: {
        region: "eu-central-003",
        bucket: "attic",
        endpoint: "https://s3.eu-central-003.backblazeb2.com",
        accessKeyId: "K003abc",
        secretAccessKey: "SYNTHSECRET-s3key",
      },
    };
    const r = await synth({ stack: "office", config: toConfigMap(blocks), showSecrets: true });
    expect(evalModule(r.files["office/atticd.nix"]!, "services.atticd.settings.storage")).toEqual({
      type: "s3",
      region: "eu-central-003",
      bucket: "attic",
      endpoint: "https://s3.eu-central-003.backblazeb2.com",
    });
    expect(r.files["office/atticd.nix"]).not.toContain("SYNTHSECRET");
    expect(r.files["office/atticd.env"]).toContain(
      "AWS_ACCESS_KEY_ID=K003abc\nAWS_SECRET_ACCESS_KEY=SYNTHSECRET-s3key\n",
    );
    expect(
      evalJson(
        `builtins.hasAttr "fileSystems" (import ${nixFile(r.files["office/atticd.nix"]!)} { pkgs = ${PKGS_STUB}; })`,
      ),
    ).toBe(false);
  });
});

describe.skipIf(!haveTool("sqlite3"))("the SQLite backup script, run for real", () => {
  it("copies a consistent database with sqlite3 .backup and keeps only the newest backups", () => {
    const work = mkdtempSync(path.join(tmpdir(), "backup-"));
    const db = path.join(work, "server.db");
    execFileSync("sqlite3", [
      db,
      "create table cache (name text, keypair text); insert into cache values ('n3x', 'key');",
    ]);
    const backups = path.join(work, "backups");
    execFileSync("mkdir", ["-p", backups]);
    for (const day of ["20200101", "20200102", "20200103"])
      writeFileSync(path.join(backups, `server-${day}T000000Z.db`), "old");
    const out = execFileSync("sh", ["-c", backupScript({ dir: backups, keep: 2 }, db)], { encoding: "utf8" });
    expect(out).toMatch(/^backed up to .*server-\d{8}T\d{6}Z\.db\n$/);
    const kept = readdirSync(backups).sort();
    expect(kept).toHaveLength(2);
    expect(kept[0]).toBe("server-20200103T000000Z.db");
    const copy = path.join(backups, kept[1]!);
    expect(execFileSync("sqlite3", [copy, "select name, keypair from cache"], { encoding: "utf8" })).toBe(
      "n3x|key\n",
    );
  });

  it("does nothing before atticd has created its database", () => {
    const work = mkdtempSync(path.join(tmpdir(), "backup-"));
    const out = execFileSync(
      "sh",
      ["-c", backupScript({ dir: path.join(work, "b"), keep: 2 }, path.join(work, "none.db"))],
      {
        encoding: "utf8",
      },
    );
    expect(out).toBe("no atticd database yet; nothing to back up\n");
  });
});
