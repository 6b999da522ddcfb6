/**
 * The provider-input check of every synth (ci/commands/synth/providerInputs.ts): small programs run
 * through the synth harness — the real SDK serializes their inputs, the recording monitor checks
 * them — and the schema file's freshness against the installed SDKs.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { AtticCache, type AtticCacheArgs } from "../components/attic/cacheProvider";
import { exampleConfig } from "./support/stacks";
import { ProviderInputError, synth } from "../ci/commands/synth/harness";
import {
  checkRegistration,
  loadProviderInputs,
  PROVIDER_INPUTS_FILE,
  type ProviderInputsFile,
} from "../ci/commands/synth/providerInputs";
import { staleSources } from "../ci/commands/synth/providerInputsGenerate";
import { OUTPUT_SIG, SECRET_SIG, SIG, UNKNOWN } from "../ci/commands/synth/wire";

const STACK = "inputs";
const urn = (type: string, name: string) => `urn:pulumi:${STACK}::attic-infra::${type}::${name}`;
const REMOTE = "command:remote:Command";
const CONNECTION_FIELDS =
  "agentSocketPath, dialErrorLimit, host, hostKey, password, perDialTimeout, port, privateKey, privateKeyPassword, proxy, user";

/** Runs `program` through the synth (in process unless `via`); the problems it reports, or []. */
async function problemsOf(
  program: () => void,
  opts: { preview?: boolean; via?: "engine" | "in-process"; module?: string } = {},
): Promise<string[]> {
  try {
    await synth({
      stack: STACK,
      config: exampleConfig("dev"),
      preview: opts.preview ?? false,
      via: opts.via ?? "in-process",
      program:
        opts.module ??
        (async () => {
          program();
          return {};
        }),
    });
    return [];
  } catch (err) {
    if (err instanceof ProviderInputError) return err.problems;
    throw err;
  }
}

const connection = { host: "203.0.113.10", user: "root" };
const CACHE = "pulumi-nodejs:dynamic/attic-infra:AtticCache";
const cacheArgs: AtticCacheArgs = {
  apiEndpoint: "https://cache.example.com/",
  name: "n3x",
  isPublic: false,
  priority: 41,
  upstreamCacheKeyNames: [],
  retentionSeconds: null,
  destroyOnDelete: false,
  signingKeyPem: "pem",
};

describe("the synth refuses inputs a provider would reject", () => {
  it("an unknown key nested in a command's connection (spread in, as the vps certificate step had it), naming the declared fields", async () => {
    const hostConnection = { ...connection, privateKeySetting: "attic-infra:vps.privateKey" };
    const problems = await problemsOf(() => {
      new command.remote.Command("c", {
        connection: { ...hostConnection, dialErrorLimit: 10 },
        create: "true",
      });
    });
    expect(problems).toEqual([
      `${urn(REMOTE, "c")}: connection.privateKeySetting is not an input of ${REMOTE}; connection takes ${CONNECTION_FIELDS}`,
    ]);
  });

  it("the same through Pulumi's entry point (npm run synth's path): the program runs, then the synth fails", async () => {
    const problems = await problemsOf(() => undefined, {
      via: "engine",
      module: "test/fixtures/badConnectionProgram.ts",
    });
    expect(problems).toEqual([
      `${urn(REMOTE, "bad-connection")}: connection.privateKeySetting is not an input of ${REMOTE}; connection takes ${CONNECTION_FIELDS}`,
    ]);
  });

  it("a misspelt input on an AWS resource passed through a spread, in an array element", async () => {
    const rule = { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" }, bucketKeyEnabeld: true };
    const problems = await problemsOf(() => {
      new aws.s3.BucketServerSideEncryptionConfiguration("sse", { bucket: "b", rules: [{ ...rule }] });
    });
    const type = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration";
    expect(problems).toEqual([
      `${urn(type, "sse")}: rules[0].bucketKeyEnabeld is not an input of ${type}; rules[0] takes applyServerSideEncryptionByDefault, blockedEncryptionTypes, bucketKeyEnabled`,
    ]);
  });

  it("a missing required input: nested, and at the top of a dynamic resource (SDK classes refuse a top-level one themselves)", async () => {
    const { name: _name, ...withoutName } = cacheArgs;
    const problems = await problemsOf(() => {
      new aws.s3.BucketVersioning("no-status", {
        bucket: "b",
        versioningConfiguration: {} as aws.types.input.s3.BucketVersioningVersioningConfiguration,
      });
      new AtticCache("no-name", withoutName as AtticCacheArgs);
    });
    const type = "aws:s3/bucketVersioning:BucketVersioning";
    expect(problems).toEqual([
      `${urn(type, "no-status")}: versioningConfiguration.status is required by ${type} and missing`,
      `${urn(CACHE, "no-name")}: name is required by ${CACHE} and missing`,
    ]);
  });

  it("an SDK class itself throws for a missing top-level input, before anything is registered", async () => {
    await expect(
      problemsOf(() => {
        new command.remote.Command("no-connection", { create: "true" } as command.remote.CommandArgs);
      }),
    ).rejects.toThrow("Missing required property 'connection'");
  });
});

describe("the example stacks pass the check", () => {
  for (const stack of ["dev", "office", "vps"])
    it(`${stack}, as an update and as a preview`, async () => {
      const config = exampleConfig(stack);
      for (const preview of [false, true]) {
        const r = await synth({ stack, config, preview });
        expect(r.resources.filter((e) => e.custom).length).toBeGreaterThan(0);
      }
    });
});

describe("the checker's rules, each against the real wire format", () => {
  it("a map's values are checked: a command's environment takes strings", async () => {
    const problems = await problemsOf(() => {
      new command.local.Command("env", {
        create: "true",
        environment: { OK: "yes", PORT: 22 as unknown as string, NESTED: { a: "b" } as unknown as string },
      });
    });
    const type = "command:local:Command";
    expect(problems).toEqual([
      `${urn(type, "env")}: environment.NESTED: expected string, got object`,
      `${urn(type, "env")}: environment.PORT: expected string, got number 22`,
    ]);
  });

  it("scalars: strict for pulumi-command; coerced as the Terraform bridge coerces them for AWS, objects still refused", async () => {
    const problems = await problemsOf(() => {
      new command.remote.Command("port", {
        connection: { ...connection, port: "22" as unknown as number },
        create: "true",
      });
      new aws.sns.Topic("topic", {
        tags: { count: 5 as unknown as string, flag: true as unknown as string },
      });
      new aws.sns.Topic("topic-object", { tags: { nested: { a: "b" } as unknown as string } });
    });
    const topic = "aws:sns/topic:Topic";
    expect(problems).toEqual([
      `${urn(topic, "topic-object")}: tags.nested: expected string, got object`,
      `${urn(REMOTE, "port")}: connection.port: expected number, got string "22"`,
    ]);
  });

  it("values unknown until deploy pass in a preview, even where required or where an object is declared; known ones are still checked", async () => {
    const program = () => {
      const bucket = new aws.s3.Bucket("b");
      new aws.s3.BucketVersioning("known-later", {
        bucket: bucket.id,
        versioningConfiguration: bucket.id.apply(() => ({ status: "Enabled" })),
      });
      new aws.s3.BucketVersioning("typo", {
        bucket: bucket.id,
        versioningConfiguration: { status: "Enabled", ...({ mfaDelte: "Disabled" } as object) },
      });
    };
    const type = "aws:s3/bucketVersioning:BucketVersioning";
    const expected = [
      `${urn(type, "typo")}: versioningConfiguration.mfaDelte is not an input of ${type}; versioningConfiguration takes mfaDelete, status`,
    ];
    expect(await problemsOf(program, { preview: true })).toEqual(expected);
    expect(await problemsOf(program)).toEqual(expected);
  });

  it("a secret is checked by the value it wraps", async () => {
    const problems = await problemsOf(() => {
      new aws.s3.BucketVersioning("secret", {
        bucket: "b",
        versioningConfiguration: pulumi.secret({ stauts: "Enabled" }) as never,
      });
    });
    const type = "aws:s3/bucketVersioning:BucketVersioning";
    expect(problems).toEqual([
      `${urn(type, "secret")}: versioningConfiguration.status is required by ${type} and missing`,
      `${urn(type, "secret")}: versioningConfiguration.stauts is not an input of ${type}; versioningConfiguration takes mfaDelete, status`,
    ]);
  });

  it("a resource passes where a string or that resource is declared (a role policy's role), not where an object or a number is", async () => {
    const problems = await problemsOf(() => {
      const role = new aws.iam.Role("role", { assumeRolePolicy: "{}" });
      new aws.iam.RolePolicy("policy", { role, policy: "{}" });
      new aws.s3.BucketVersioning("ref", { bucket: "b", versioningConfiguration: role as never });
      new aws.sns.Topic("rate", { applicationSuccessFeedbackSampleRate: role as never });
    });
    const type = "aws:s3/bucketVersioning:BucketVersioning";
    expect(problems).toEqual([
      `${urn(type, "ref")}: versioningConfiguration: expected an object, got resource`,
      `${urn("aws:sns/topic:Topic", "rate")}: applicationSuccessFeedbackSampleRate: expected number, got resource`,
    ]);
  });

  it("a union (a policy as JSON text or as a PolicyDocument) checks an object against the document", async () => {
    const problems = await problemsOf(() => {
      new aws.iam.RolePolicy("text", { role: "r", policy: JSON.stringify({ Statment: [] }) });
      new aws.iam.RolePolicy("document", {
        role: "r",
        policy: { Version: "2012-10-17", Statement: [], ...({ Statment: [] } as object) },
      });
    });
    const type = "aws:iam/rolePolicy:RolePolicy";
    expect(problems).toEqual([
      `${urn(type, "document")}: policy.Statment is not an input of ${type}; policy takes Id, Statement, Version`,
    ]);
  });

  it("null leaves an optional input unset and a required one missing", async () => {
    const problems = await problemsOf(() => {
      new command.remote.Command("nulls", {
        connection: { ...connection, host: null as unknown as string },
        create: "true",
        delete: null as unknown as string,
      });
    });
    expect(problems).toEqual([
      `${urn(REMOTE, "nulls")}: connection.host is required by ${REMOTE} and missing`,
    ]);
  });

  it("an explicit provider is checked against its ProviderArgs, its inputs parsed from the JSON text the SDK sends", async () => {
    const problems = await problemsOf(() => {
      new aws.Provider("good", { region: "us-east-1", defaultTags: { tags: { a: "b" } }, maxRetries: 5 });
      new aws.Provider("bad", { region: "us-east-1", defaultTags: { ...({ tagz: { a: "b" } } as object) } });
    });
    const type = "pulumi:providers:aws";
    expect(problems).toEqual([
      `${urn(type, "bad")}: defaultTags.tagz is not an input of ${type}; defaultTags takes tags`,
    ]);
  });

  it("a dynamic provider's resource is checked against the provider's declared inputs, without the __provider the SDK adds", async () => {
    const misspelt = { destroyOnDelte: true };
    const problems = await problemsOf(() => {
      new AtticCache("good", cacheArgs);
      new AtticCache("bad", { ...cacheArgs, ...misspelt });
    });
    expect(problems).toEqual([
      `${urn(CACHE, "bad")}: destroyOnDelte is not an input of ${CACHE}; its inputs are apiEndpoint, destroyOnDelete, isPublic, name, priority, retentionSeconds, retryIntervalSeconds, signingKeyPem, storeDir, upstreamCacheKeyNames, waitSeconds`,
    ]);
  });

  it("component resources are not checked: no provider sees their inputs", async () => {
    const problems = await problemsOf(() => {
      new pulumi.ComponentResource("test:index:Anything", "component", { whatever: 1 });
    });
    expect(problems).toEqual([]);
  });

  it("a custom resource of a type the file does not cover stops the synth with the command that regenerates it", async () => {
    const problems = await problemsOf(() => {
      new aws.sqs.Queue("queue");
    });
    expect(problems).toEqual([
      `${urn("aws:sqs/queue:Queue", "queue")}: the type aws:sqs/queue:Queue has no declared inputs in ci/commands/synth/provider-inputs.json; run npm run provider-inputs (it covers every resource class the program constructs)`,
    ]);
  });

  // The SDK sends output values only to remote components' constructors, never to a custom
  // resource's registration: the monitor's check is fed such a registration directly.
  it("output values: a known one is checked by its value, an unknown one passes", () => {
    const data = loadProviderInputs();
    const type = "aws:s3/bucketVersioning:BucketVersioning";
    const output = (value?: unknown) => ({ [SIG]: OUTPUT_SIG, ...(value === undefined ? {} : { value }) });
    const check = (versioningConfiguration: unknown) =>
      checkRegistration(data, {
        urn: urn(type, "v"),
        type,
        custom: true,
        inputs: { bucket: output("b"), versioningConfiguration },
      });
    expect(check(output())).toEqual([]);
    expect(check(UNKNOWN)).toEqual([]);
    expect(check(output({ status: "Enabled" }))).toEqual([]);
    expect(check(output({ [SIG]: SECRET_SIG, value: { status: "Enabled", mfa: "x" } }))).toEqual([
      `${urn(type, "v")}: versioningConfiguration.mfa is not an input of ${type}; versioningConfiguration takes mfaDelete, status`,
    ]);
  });
});

describe("ci/commands/synth/provider-inputs.json", () => {
  const committed = () => JSON.parse(readFileSync(PROVIDER_INPUTS_FILE, "utf8")) as ProviderInputsFile;

  it("matches the installed SDKs: every source it was generated from still has its recorded hash", () => {
    expect(
      staleSources(),
      "run npm run provider-inputs and commit ci/commands/synth/provider-inputs.json",
    ).toEqual([]);
  });

  it("a changed .d.ts, a changed declaration of this repository and another package version are each reported", () => {
    const data = committed();
    const dts = Object.keys(data.sources).find((k) => k.endsWith("command/types/input.d.ts"))!;
    const declaration = Object.keys(data.sources).find((k) => k.includes("#"))!;
    const zero = "0".repeat(64);
    expect(
      staleSources({
        ...data,
        packages: { ...data.packages, "@pulumi/command": "1.2.0" },
        sources: { ...data.sources, [dts]: zero, [declaration]: zero },
      }),
    ).toEqual([
      `@pulumi/command: generated from 1.2.0, installed ${data.packages["@pulumi/command"]}`,
      `${declaration}: changed`,
      `${dts}: changed`,
    ]);
  });

  it("a file generated for other package versions stops every synth, with the command that regenerates it", () => {
    const data = committed();
    const file = path.join(mkdtempSync(path.join(tmpdir(), "provider-inputs-")), "provider-inputs.json");
    writeFileSync(file, JSON.stringify({ ...data, packages: { ...data.packages, "@pulumi/aws": "7.0.0" } }));
    expect(() => loadProviderInputs(file)).toThrow(
      `was generated for @pulumi/aws 7.0.0; installed: @pulumi/aws ${data.packages["@pulumi/aws"]}. Run npm run provider-inputs.`,
    );
  });
});
