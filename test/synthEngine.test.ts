/**
 * Synth through Pulumi's own entry point: `node @pulumi/pulumi/cmd/run` started as
 * pulumi-language-nodejs starts it, against the recording engine (ci/commands/synth/engine.ts). These runs
 * start a fresh process each (seconds): they live in their own file so they run beside the others.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { exampleConfig, ROOT } from "./support/stacks";
import { readRuntimeOptions } from "../ci/commands/synth/engine";
import { type SynthResult, synth, UNKNOWN_PLACEHOLDER } from "../ci/commands/synth/harness";
import { leaks } from "./support/leaks";
import { DYNAMIC_PROVIDER_PLACEHOLDER, RecordingMonitor } from "../ci/commands/synth/monitor";

const byName = (r: SynthResult, type: string, name: string) => {
  const found = r.resources.find((e) => e.type === type && e.name === name);
  if (!found) throw new Error(`no ${type} ${name}`);
  return found;
};

let dev: SynthResult;
let devPreview: SynthResult;
let office: SynthResult;

// One program run per hook: each hook's timeout bounds one cold start of the program.
beforeAll(async () => {
  devPreview = await synth({ stack: "dev", config: exampleConfig("dev"), via: "engine", preview: true });
});
beforeAll(async () => {
  // An office block the dev stack does not deploy: the program warns about it, once.
  const config = {
    ...exampleConfig("dev"),
    "attic-infra:office": exampleConfig("office")["attic-infra:office"]!,
  };
  dev = await synth({ stack: "dev", config, via: "engine" });
});
beforeAll(async () => {
  // The office stack through cmd/run is synth.test.ts's command-line test; here, in process.
  office = await synth({ stack: "office", config: exampleConfig("office") });
});

describe("the program runs as `pulumi preview` runs it", () => {
  it("starts node_modules/@pulumi/pulumi/cmd/run with the language host's flags, ending with the program directory", () => {
    const argv = dev.launch!.argv;
    const run = argv.findIndex((a) => a.endsWith(path.join("@pulumi", "pulumi", "cmd", "run", "index.js")));
    expect(run).toBeGreaterThanOrEqual(0);
    const flags = argv.slice(run + 1);
    const flag = (name: string) => flags[flags.indexOf(`--${name}`) + 1];
    expect(flags.filter((a) => a.startsWith("--"))).toEqual([
      "--monitor",
      "--engine",
      "--organization",
      "--project",
      "--root-directory",
      "--stack",
      "--pwd",
      "--parallel",
    ]);
    expect([flag("project"), flag("stack"), flag("pwd"), flags.at(-1)]).toEqual([
      "attic-infra",
      "dev",
      ROOT,
      ".",
    ]);
    expect(devPreview.launch!.argv).toContain("--dry-run");
  });

  it("hands config over as PULUMI_CONFIG does: `<ns>:config:<key>` keys, structured values as JSON text, which the SDK decodes", () => {
    const config = JSON.parse(dev.launch!.env.PULUMI_CONFIG!) as Record<string, string>;
    expect(Object.keys(config)).toContain("attic-infra:config:sites");
    expect(config["attic-infra:config:sites"]).toBe('["aws"]');
    expect(config["aws:config:region"]).toBe("us-east-1");
    expect(dev.launch!.env.PULUMI_CONFIG_SECRET_KEYS).toBe("[]");
    // The program read `attic-infra:sites` back as a list: the SDK turned the keys back.
    expect(dev.outputs.sites).toEqual(["aws"]);
  });

  it("each warning the program logs reaches the engine once, without the SDK's [runtime] console prefix", () => {
    expect(dev.warnings).toEqual([
      "attic-infra:office: is set but sites does not list office; it is ignored",
    ]);
  });

  it("uses exactly the runtime options of Pulumi.yaml", () => {
    const doc = parse(readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8")) as {
      runtime: { options: Record<string, unknown> };
    };
    const { options } = doc.runtime;
    const env = dev.launch!.env;
    expect(env.PULUMI_NODEJS_TYPESCRIPT).toBe(options.typescript === false ? undefined : "true");
    expect(env.PULUMI_NODEJS_TSCONFIG_PATH).toBe(options.tsconfig);
    const nodeargs =
      typeof options.nodeargs === "string" ? options.nodeargs.split(/\s+/).filter(Boolean) : [];
    expect(dev.launch!.argv.slice(0, nodeargs.length)).toEqual(nodeargs);
    expect(readRuntimeOptions()).toEqual({
      typescript: options.typescript !== false,
      ...(options.tsconfig ? { tsconfig: options.tsconfig } : {}),
      nodeargs,
    });
  });

  it("the deploy-time tsconfig turns type-checking off (the SDK reads noCheck from that file's own compilerOptions)", () => {
    const tsconfig = readRuntimeOptions().tsconfig!;
    const text = readFileSync(path.join(ROOT, tsconfig), "utf8").replace(/^\s*\/\/.*$/gm, "");
    expect((JSON.parse(text) as { compilerOptions: { noCheck?: boolean } }).compilerOptions.noCheck).toBe(
      true,
    );
  });
});

describe("what the recording engine records", () => {
  it("URNs chain every parent type, as the engine builds them; the root stack adds none", () => {
    const vpc = byName(dev, "aws:ec2/vpc:Vpc", "aws-network-vpc");
    expect(vpc.urn).toBe(
      "urn:pulumi:dev::attic-infra::attic:aws:Site$attic:aws:Network$aws:ec2/vpc:Vpc::aws-network-vpc",
    );
    const site = byName(dev, "attic:aws:Site", "aws");
    expect(site.parent).toBe("urn:pulumi:dev::attic-infra::pulumi:pulumi:Stack::attic-infra-dev");
    expect(site.urn).toBe("urn:pulumi:dev::attic-infra::attic:aws:Site::aws");
  });

  it("the dynamic cache provider arrives serialized, as module text in __provider", () => {
    const cache = dev.resources.find((e) => e.type.startsWith("pulumi-nodejs:dynamic/"));
    expect(cache?.inputs.__provider).toBe(DYNAMIC_PROVIDER_PLACEHOLDER);
  });

  it("explicit providers are referenced as urn::id", () => {
    const vpc = byName(dev, "aws:ec2/vpc:Vpc", "aws-network-vpc");
    expect(vpc.provider).toMatch(/^urn:pulumi:dev::attic-infra::pulumi:providers:aws::aws::.+/);
  });

  it("gives the same resources, outputs and files as the in-process transport the other tests use", async () => {
    const config = {
      ...exampleConfig("dev"),
      "attic-infra:office": exampleConfig("office")["attic-infra:office"]!,
    };
    const inProcess = await synth({ stack: "dev", config });
    const sorted = (r: SynthResult) => [...r.resources].sort((a, b) => a.urn.localeCompare(b.urn));
    expect(sorted(dev)).toEqual(sorted(inProcess));
    expect(dev.outputs).toEqual(inProcess.outputs);
    expect(dev.files).toEqual(inProcess.files);
  });

  it("outputs providers compute have values: the autoscaling target names the ECS service", () => {
    const target = dev.resources.find((e) => e.type === "aws:appautoscaling/target:Target");
    expect(target?.inputs.resourceId).toMatch(/^service\/aws-ecs-cluster\/aws-ecs-api-[0-9a-f]{7}$/);
    expect(leaks(dev)).toEqual([]);
    expect(leaks(office)).toEqual([]);
  });
});

describe("--preview: every resource is a create, computed values stay unknown", () => {
  it("computed outputs are reported as unknown, inputs the program knows stay", () => {
    expect((devPreview.outputs.aws as Record<string, unknown>).bucketName).toBe(UNKNOWN_PLACEHOLDER);
    expect((devPreview.outputs.aws as Record<string, unknown>).endpoint).toBe("https://attic.example.com/");
  });

  it("dev: every file a synth writes is written or listed as unknown until deploy, and nothing leaks", () => {
    expect([...Object.keys(devPreview.files), ...devPreview.unknownFiles].sort()).toEqual(
      Object.keys(dev.files).sort(),
    );
    expect(devPreview.unknownFiles.length).toBeGreaterThan(0);
    expect(devPreview.resources.map((r) => r.urn)).toEqual(
      expect.arrayContaining(dev.resources.map((r) => r.urn)),
    );
    expect(leaks(devPreview)).toEqual([]);
  });
  // office: synth.test.ts runs `npm run synth -- --stack office --preview`.
});

describe("the recording monitor, request by request (options the program does not use yet)", () => {
  const proto = (p: string) => require(`@pulumi/pulumi/proto/${p}`);
  const { Struct } = require("google-protobuf/google/protobuf/struct_pb");

  function register(monitor: RecordingMonitor, build: (req: any, resproto: any, aliasproto: any) => void) {
    const resproto = proto("resource_pb");
    const req = new resproto.RegisterResourceRequest();
    req.setType("random:index/randomPassword:RandomPassword");
    req.setName("db-password");
    req.setParent("urn:pulumi:dev::attic-infra::attic:aws:Site$attic:aws:Database::aws-database");
    req.setCustom(true);
    req.setObject(Struct.fromJavaScript({ length: 32 }));
    build(req, resproto, proto("alias_pb"));
    return new Promise<any>((resolve, reject) =>
      monitor.registerResource(req, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }
  const newMonitor = () =>
    new RecordingMonitor({
      project: "attic-infra",
      stack: "dev",
      preview: false,
      showSecrets: false,
      region: "us-east-1",
    });

  it("records custom timeouts and resolves alias specs to URNs as the engine does", async () => {
    const monitor = newMonitor();
    await register(monitor, (req, resproto, aliasproto) => {
      const t = new resproto.RegisterResourceRequest.CustomTimeouts();
      t.setCreate("40m");
      t.setDelete("2h");
      req.setCustomtimeouts(t);
      const renamed = new aliasproto.Alias.Spec();
      renamed.setName("old-password");
      const moved = new aliasproto.Alias.Spec();
      moved.setNoparent(true);
      req.setAliasesList([renamed, moved].map((spec) => new aliasproto.Alias().setSpec(spec)));
      req.setProtect(true);
      req.setRetainondelete(true);
    });
    const [recorded] = monitor.resources;
    expect(recorded!.options).toMatchObject({
      protect: true,
      retainOnDelete: true,
      customTimeouts: { create: "40m", delete: "2h" },
      aliases: [
        "urn:pulumi:dev::attic-infra::attic:aws:Site$attic:aws:Database$random:index/randomPassword:RandomPassword::old-password",
        "urn:pulumi:dev::attic-infra::random:index/randomPassword:RandomPassword::db-password",
      ],
    });
    expect(recorded!.urn).toBe(
      "urn:pulumi:dev::attic-infra::attic:aws:Site$attic:aws:Database$random:index/randomPassword:RandomPassword::db-password",
    );
  });

  it("returns additionalSecretOutputs as secrets, as the engine does; a preview returns no id and only the inputs", async () => {
    const res = await register(newMonitor(), (req) => req.setAdditionalsecretoutputsList(["result"]));
    const state = res.getObject().toJavaScript();
    expect(state.result).toMatchObject({
      "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
    });
    expect(state.length).toBe(32);
    const preview = new RecordingMonitor({
      project: "attic-infra",
      stack: "dev",
      preview: true,
      showSecrets: false,
      region: "us-east-1",
    });
    const previewed = await register(preview, () => {});
    expect([previewed.getId(), previewed.getObject().toJavaScript()]).toEqual(["", { length: 32 }]);
  });
});
