import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { exampleBlocks, exampleConfig, ROOT, synthExample, toConfigMap, toYaml } from "./support/stacks";
import { type SynthResult, synth } from "../ci/commands/synth/harness";
import { leaks } from "./support/leaks";
import { scaled } from "./support/timeScale";
import { makeMocks } from "../ci/commands/synth/mocks";
import { checkOutDir, OUT_MARKER } from "../ci/commands/synth/outDir";
import { readStackFile } from "../ci/commands/synth/stackFile";

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
    expect(Object.keys(dev.outputs).sort()).toEqual(["aws", "signingKeyUrn", "sites", "tokenPublicKey"]);
  });

  it("the office stack (sites: [office, mikrotik]) registers those two and no AWS resource", () => {
    expect(componentTypes(office)).toEqual(
      expect.arrayContaining(["attic:office:Site", "attic:mikrotik:Switch"]),
    );
    expect(componentTypes(office)).not.toContain("attic:aws:Site");
    expect(
      office.resources.filter((e) => e.type.startsWith("aws:") || e.type === "pulumi:providers:aws"),
    ).toEqual([]);
    expect(Object.keys(office.outputs).sort()).toEqual([
      "mikrotik",
      "office",
      "signingKeyUrn",
      "sites",
      "tokenPublicKey",
    ]);
  });

  it("each site exports one structured output", () => {
    expect(Object.keys(dev.outputs.aws as object).sort()).toEqual([
      "alarmEmailConfirmation",
      "alarmTopicArn",
      "bucketName",
      "caches",
      "database",
      "databaseEndpoint",
      "ecs",
      "endpoint",
      "gcRunTask",
      "gcSchedule",
      "logGroup",
      "netrc",
      "nixConf",
      "pullTokens",
      "tokens",
    ]);
    expect(Object.keys(office.outputs.mikrotik as object).sort()).toEqual([
      "dnsRecords",
      "gateway",
      "leases",
      "target",
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
        "customTimeouts",
        "deleteBeforeReplace",
        "dependsOn",
        "ignoreChanges",
        "protect",
        "replaceOnChanges",
        "retainOnDelete",
      ]);
  });

  it("children name their parent's URN; the root stack resource is first and has no parent", () => {
    const [root] = office.resources;
    const site = office.resources.find((e) => e.type === "attic:office:Site");
    const server = office.resources.find((e) => e.type === "attic:attic:Server");
    expect(root).toMatchObject({ type: "pulumi:pulumi:Stack", name: "attic-infra-office", parent: null });
    expect(site?.parent).toBe(root?.urn);
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
      [path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "ci/commands/synth/cli.ts", ...args],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );

  it(
    "--preview writes what a first `pulumi preview` knows, into an empty directory, through cmd/run",
    () => {
      const out = mkdtempSync(path.join(tmpdir(), "synth-"));
      const run = cli(["--stack", "office", "--preview", "--out", out]);
      // Only warnings (a token near its expiry date, depending on today) may appear, each once.
      const warnings = run.stderr.split("\n").filter((l) => l);
      expect(warnings.filter((l) => !l.startsWith("warning: "))).toEqual([]);
      expect(new Set(warnings).size).toBe(warnings.length);
      expect(run.stderr).not.toContain("[runtime]");
      expect(run.status).toBe(0);
      expect(readdirSync(out).sort()).toEqual([
        OUT_MARKER,
        "files",
        "outputs.json",
        "resources.json",
        "unknown-files.txt",
      ]);
      const read = (f: string) => readFileSync(path.join(out, f), "utf8");
      const resources = JSON.parse(read("resources.json")) as SynthResult["resources"];
      expect(resources[0]?.urn).toBe(
        "urn:pulumi:office::attic-infra::pulumi:pulumi:Stack::attic-infra-office",
      );
      expect(resources.map((r) => r.urn)).toEqual(expect.arrayContaining(office.resources.map((r) => r.urn)));
      // Every file of a full synth is written, or listed as unknown until deploy.
      const unknown = read("unknown-files.txt")
        .split("\n")
        .filter(Boolean)
        .map((l) => /^files\/(.+): unknown until deploy$/.exec(l)![1]!);
      const written = Object.fromEntries(
        (readdirSync(path.join(out, "files"), { recursive: true }) as string[])
          .filter((f) => statSync(path.join(out, "files", f)).isFile())
          .map((f) => [f, read(path.join("files", f))]),
      );
      expect(unknown.length).toBeGreaterThan(0);
      expect([...Object.keys(written), ...unknown].sort()).toEqual(Object.keys(office.files).sort());
      for (const [f, content] of Object.entries(written)) expect(content, f).toBe(office.files[f]);
      expect(leaks({ resources, outputs: JSON.parse(read("outputs.json")), files: written })).toEqual([]);
      // A cold start of the program (tsx, ts-node, the SDKs): a hook's bound, not a test's.
    },
    scaled(120).ms,
  );

  describe("--out never deletes what synth did not write", () => {
    const refused = (out: string, cwd = ROOT) => {
      const run = spawnSync(
        process.execPath,
        [
          path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"),
          path.join(ROOT, "ci/commands/synth/cli.ts"),
          "--stack",
          "office",
          "--out",
          out,
        ],
        { cwd, encoding: "utf8" },
      );
      expect(run.status).toBe(1);
      expect(run.stdout).toBe("");
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
      expect(run.stderr).toContain("Nothing was written or deleted");
      return run.stderr;
    };

    it("--out . (the repository) exits 1 and the checkout is untouched", () => {
      const before = readdirSync(ROOT).sort();
      expect(refused(".")).toContain("that is the repository");
      expect(readdirSync(ROOT).sort()).toEqual(before);
    });

    it("--out <a directory with other files> exits 1 and keeps them", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "notes-"));
      writeFileSync(path.join(dir, "notes.txt"), "mine");
      expect(refused(dir)).toContain("holds other files (notes.txt)");
      expect(readFileSync(path.join(dir, "notes.txt"), "utf8")).toBe("mine");
    });

    it("--out <a file> exits 1 and leaves the file as it was", () => {
      const file = path.join(mkdtempSync(path.join(tmpdir(), "file-")), "report.txt");
      writeFileSync(file, "keep");
      expect(refused(file)).toContain("is a file");
      expect(refused(path.join(file, "sub"))).toContain("cannot be created");
      expect(readFileSync(file, "utf8")).toBe("keep");
    });

    it("the home directory, / and a directory containing the repository are refused", () => {
      expect(checkOutDir(homedir(), ROOT)).toContain("the home directory");
      expect(checkOutDir("/", ROOT)).toContain("the root directory");
      expect(checkOutDir(path.dirname(ROOT), ROOT)).toContain("contains the repository");
    });

    it("a new directory, an empty one, one under out/ and one an earlier synth wrote are accepted", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "out-"));
      expect(checkOutDir(path.join(dir, "new", "deeper"), ROOT)).toBeUndefined();
      expect(checkOutDir(dir, ROOT)).toBeUndefined();
      writeFileSync(path.join(dir, "resources.json"), "{}");
      expect(checkOutDir(dir, ROOT)).toContain("holds other files");
      writeFileSync(path.join(dir, OUT_MARKER), "");
      expect(checkOutDir(dir, ROOT)).toBeUndefined();
      expect(checkOutDir(path.join(ROOT, "out", "anything"), ROOT)).toBeUndefined();
    });
  });

  it("an unknown --stack names the stacks that exist", () => {
    const run = cli(["--stack", "prod"]);
    expect(run.status).toBe(1);
    const stacks = readdirSync(ROOT)
      .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
      .filter(Boolean)
      .sort();
    expect(stacks).toEqual(expect.arrayContaining(["dev", "office"]));
    expect(run.stderr).toBe(
      `there is no Pulumi.prod.yaml; stacks here: ${stacks.join(", ")} (or give --config <file>)\n`,
    );
  });

  it("an unreadable stack file is one sentence, no stack trace", () => {
    const run = cli(["--config", path.join(tmpdir(), "missing", "Pulumi.x.yaml")]);
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toMatch(/^cannot read .*Pulumi\.x\.yaml: /);
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
