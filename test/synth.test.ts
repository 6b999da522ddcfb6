import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { exampleBlocks, exampleConfig, ROOT, synthExample, toConfigMap, toYaml } from "./support/stacks";
import { type SynthResult, synth } from "./synth/harness";
import { makeMocks } from "./synth/mocks";
import { readStackFile } from "./synth/stackFile";

const componentTypes = (r: SynthResult) => r.resources.filter((e) => !e.custom).map((e) => e.type);

let dev: SynthResult;
let office: SynthResult;

beforeAll(async () => {
  dev = await synthExample("dev");
  office = await synthExample("office");
});

describe("site selection", () => {
  it("the dev stack (sites: [aws]) registers the aws site and neither office nor mikrotik", () => {
    expect(componentTypes(dev)).toContain("attic:aws:Site");
    expect(componentTypes(dev)).not.toContain("attic:office:Site");
    expect(componentTypes(dev)).not.toContain("attic:mikrotik:Switch");
    expect(Object.keys(dev.outputs).sort()).toEqual(["aws", "sites", "tokenPublicKey"]);
  });

  it("the office stack (sites: [office, mikrotik]) registers those two and no AWS resource", () => {
    expect(componentTypes(office)).toEqual(
      expect.arrayContaining(["attic:office:Site", "attic:mikrotik:Switch"]),
    );
    expect(componentTypes(office)).not.toContain("attic:aws:Site");
    expect(
      office.resources.filter((e) => e.type.startsWith("aws:") || e.type === "pulumi:providers:aws"),
    ).toEqual([]);
    expect(Object.keys(office.outputs).sort()).toEqual(["mikrotik", "office", "sites", "tokenPublicKey"]);
  });

  it("each site exports one structured output", () => {
    expect(Object.keys(dev.outputs.aws as object).sort()).toEqual([
      "alarmEmailConfirmation",
      "alarmTopicArn",
      "bucketName",
      "caches",
      "databaseEndpoint",
      "endpoint",
      "gcRunTask",
      "logGroup",
      "netrc",
      "nixConf",
      "tokens",
    ]);
    expect(Object.keys(office.outputs.mikrotik as object).sort()).toEqual([
      "dnsRecords",
      "gateway",
      "leases",
      "vlanId",
    ]);
  });
});

describe("a stack with both the aws and office sites", () => {
  it("the office nix.conf snippet lists the office cache first, then the AWS one, by priority", async () => {
    const dev = exampleBlocks("dev") as Record<string, any>;
    const off = exampleBlocks("office") as Record<string, any>;
    const both = toConfigMap({
      ...dev,
      "attic-infra:office": off["attic-infra:office"],
      "attic-infra:sites": ["aws", "office"],
    });
    const r = await synth({ stack: "both", config: both });
    const nixConf = (r.outputs.office as { nixConf: string }).nixConf;
    expect(nixConf.split("\n")[0]).toBe(
      "extra-substituters = http://attic.lan:8080/n3x?priority=41 https://attic.example.com/n3x?priority=42",
    );
    expect(r.resources.filter((e) => e.type === "tls:index/privateKey:PrivateKey")).toHaveLength(1);
  });
});

describe("synth output", () => {
  it("two runs give identical resources and outputs", async () => {
    const again = await synthExample("office");
    expect(JSON.stringify(again.resources)).toBe(JSON.stringify(office.resources));
    expect(JSON.stringify(again.outputs)).toBe(JSON.stringify(office.outputs));
    const devAgain = await synthExample("dev");
    expect(JSON.stringify(devAgain.resources)).toBe(JSON.stringify(dev.resources));
    expect(JSON.stringify(devAgain.outputs)).toBe(JSON.stringify(dev.outputs));
  });

  it("secret outputs are written as [secret] unless shown", async () => {
    expect((office.outputs.office as Record<string, unknown>).tokens).toBe("[secret]");
    const shown = await synthExample("office", true);
    const tokens = (shown.outputs.office as { tokens: Record<string, string> }).tokens;
    expect(Object.keys(tokens)).toEqual(["ci", "developers"]);
    expect(tokens.ci).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it("every resource records its options, with the signing key protected", () => {
    const key = office.resources.find((e) => e.type === "tls:index/privateKey:PrivateKey");
    expect(key?.options.protect).toBe(true);
    expect(key?.inputs).toMatchObject({ algorithm: "RSA", rsaBits: 4096 });
    for (const e of office.resources)
      expect(Object.keys(e.options).sort()).toEqual([
        "additionalSecretOutputs",
        "aliases",
        "deleteBeforeReplace",
        "dependsOn",
        "ignoreChanges",
        "protect",
        "replaceOnChanges",
        "retainOnDelete",
      ]);
  });

  it("children name their parent's URN", () => {
    const site = office.resources.find((e) => e.type === "attic:office:Site");
    const server = office.resources.find((e) => e.type === "attic:attic:Server");
    expect(site?.parent).toBeNull();
    expect(server?.parent).toBe(site?.urn);
  });
});

describe("stack files", () => {
  it("secure: values (nested ones too) become deterministic SYNTHSECRET placeholders and mark the key secret", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "stack-"));
    const file = path.join(dir, "Pulumi.sec.yaml");
    writeFileSync(
      file,
      "config:\n  attic-infra:office:\n    host: h\n    privateKey:\n      secure: v1:abc\n  sites: [office]\n",
    );
    const a = readStackFile(file, "attic-infra");
    const b = readStackFile(file, "attic-infra");
    expect(a).toEqual(b);
    expect(a.secretKeys).toEqual(["attic-infra:office"]);
    expect(JSON.parse(a.config["attic-infra:office"]!).privateKey).toMatch(
      /^SYNTHSECRET-config-[0-9a-f]{16}$/,
    );
    expect(a.config["attic-infra:sites"]).toBe('["office"]');
  });
});

describe("invalid configuration", () => {
  it("the program throws before registering any resource", async () => {
    const blocks = exampleBlocks("office") as Record<string, any>;
    blocks["attic-infra:mikrotik"].vlanId = 5000;
    let registered = 0;
    const mocks = makeMocks("us-east-1");
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered++;
          return mocks.newResource(args);
        },
        call: mocks.call,
      },
      "attic-infra",
      "office",
      false,
    );
    pulumi.runtime.setAllConfig(
      Object.fromEntries(
        Object.entries(blocks).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
      ),
    );
    const mod = (await import("../index")) as unknown as
      (() => Promise<unknown>) | { default: () => Promise<unknown> };
    const main = typeof mod === "function" ? mod : mod.default;
    await expect(main()).rejects.toThrow(/attic-infra:mikrotik\.vlanId: 5000 is out of range/);
    expect(registered).toBe(0);
  });

  it("harness: the config is checked before the program runs", async () => {
    const config = exampleConfig("dev");
    config["attic-infra:aws"] = "{}";
    await expect(synth({ stack: "dev", config })).rejects.toThrow(/attic-infra:aws\.hostname: is required/);
  });
});

describe("npm run synth (the command line)", () => {
  const cli = (args: string[]) =>
    spawnSync(
      process.execPath,
      [path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "test/synth/cli.ts", ...args],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );

  it("writes resources.json, outputs.json and files/ for a stack", () => {
    const out = mkdtempSync(path.join(tmpdir(), "synth-"));
    const run = cli(["--stack", "office", "--out", out]);
    // Only warnings (a token near its expiry date, depending on today) may appear.
    expect(run.stderr.split("\n").filter((l) => l && !l.startsWith("warning: "))).toEqual([]);
    expect(run.status).toBe(0);
    expect(readdirSync(out).sort()).toEqual(["files", "outputs.json", "resources.json"]);
    expect(JSON.parse(readFileSync(path.join(out, "resources.json"), "utf8"))).toEqual(
      JSON.parse(JSON.stringify(office.resources)),
    );
    expect(readFileSync(path.join(out, "files", "office", "atticd-monolithic.toml"), "utf8")).toBe(
      office.files["office/atticd-monolithic.toml"],
    );
  });

  it("exits 2 naming every bad key path, and writes nothing", () => {
    const blocks = exampleBlocks("office") as Record<string, any>;
    blocks["attic-infra:mikrotik"].vlanId = 5000;
    blocks["attic-infra:mikrotik"].accessPorts.push("ether24");
    blocks["attic-infra:office"].apiEndpoint = "http://attic.lan:8080";
    blocks["attic-infra:attic"].chunking = { minSize: 1_000_000 };
    const dir = mkdtempSync(path.join(tmpdir(), "synth-bad-"));
    const file = path.join(dir, "Pulumi.bad.yaml");
    writeFileSync(file, toYaml(blocks));
    const out = path.join(dir, "out");
    const run = cli(["--config", file, "--out", out]);
    expect(run.status).toBe(2);
    for (const key of [
      "attic-infra:mikrotik.vlanId:",
      "attic-infra:mikrotik.accessPorts[4]:",
      "attic-infra:office.apiEndpoint:",
      "attic-infra:attic.chunking:",
    ]) {
      expect(run.stderr).toContain(key);
    }
    expect(run.stdout).toBe("");
    expect(existsSync(out)).toBe(false);
  });
});
