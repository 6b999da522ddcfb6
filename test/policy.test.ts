/**
 * The policy pack, run over synth's resources the way Pulumi's analyzer calls it: each resource's
 * type and properties go to every policy's validateResource. The example stacks must pass; a copy
 * mutated to break one rule must fail that rule. (Not run here: the pack inside `pulumi preview`.)
 */
import * as path from "node:path";
import type { ResourceValidationArgs } from "@pulumi/policy";
import { beforeAll, describe, expect, it } from "vitest";
import {
  databaseSafety,
  deliverableAlarms,
  encryptionAtRest,
  noOpenIngress,
  noPlaintextSecretsInTasks,
  noPublicS3,
  noWildcardDataAccess,
  pinnedHostKeys,
  policies,
  requiredTags,
  tlsListeners,
} from "../policy/policies";
import { type SynthResource, type SynthResult, synth } from "../ci/commands/synth/harness";
import { readStackFile } from "../ci/commands/synth/stackFile";
import { MIN_BACKUP_RETENTION_DAYS } from "../policy/minimums";
import { ROOT, synthExample } from "./support/stacks";

type Policy = (typeof policies)[number];

function violations(resources: SynthResource[], only?: Policy): string[] {
  const found: string[] = [];
  for (const r of resources) {
    const args = {
      type: r.type,
      props: r.inputs,
      urn: r.urn,
      name: r.name,
      opts: { protect: r.options.protect },
      stackTags: new Map(),
      isType: () => false,
      asType: () => undefined,
      getConfig: () => ({}),
    } as unknown as ResourceValidationArgs;
    for (const p of only ? [only] : policies) {
      const validate = p.validateResource;
      for (const v of Array.isArray(validate) ? validate : validate ? [validate] : []) {
        void v(args, (message) => found.push(`${p.name}: ${r.name}: ${message}`));
      }
    }
  }
  return found;
}

/** A copy of the resources with one resource's inputs changed. */
function mutate(
  r: SynthResult,
  type: string,
  change: (inputs: Record<string, any>) => void,
  name?: string,
): SynthResource[] {
  const copy = structuredClone(r.resources);
  const target = copy.find((e) => e.type === type && (name === undefined || e.name === name));
  if (!target) throw new Error(`no ${type} ${name ?? ""} to mutate`);
  change(target.inputs);
  return copy;
}

let dev: SynthResult;
let office: SynthResult;
let adopt: SynthResult;
let vps: SynthResult;
beforeAll(async () => {
  dev = await synthExample("dev", true);
  office = await synthExample("office", true);
  vps = await synthExample("vps", true);
  const { config } = readStackFile(path.join(ROOT, "test", "fixtures", "Pulumi.adopt.yaml"), "attic-infra");
  adopt = await synth({ stack: "adopt", config, showSecrets: true });
});

describe("the example stacks pass every policy", () => {
  it("dev", () => expect(violations(dev.resources)).toEqual([]));
  it("office", () => expect(violations(office.resources)).toEqual([]));
  it("vps", () => expect(violations(vps.resources)).toEqual([]));
  it("a stack adopting existing infrastructure", () => expect(violations(adopt.resources)).toEqual([]));
  it("all policies are mandatory", () => {
    for (const p of policies) expect(p.enforcementLevel, p.name).toBe("mandatory");
  });
});

describe("a copy breaking one rule fails that rule", () => {
  const expectFails = (resources: SynthResource[], policy: Policy, message: RegExp) => {
    const found = violations(resources, policy);
    expect(found.length, `${policy.name} should flag the mutation`).toBeGreaterThan(0);
    expect(found.join("\n")).toMatch(message);
  };

  it("a public access block that lets public policies through", () => {
    expectFails(
      mutate(
        dev,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        (i) => (i.blockPublicPolicy = false),
      ),
      noPublicS3,
      /blockPublicPolicy must be true/,
    );
  });

  it("a bucket policy that allows everyone", () => {
    expectFails(
      mutate(
        dev,
        "aws:s3/bucketPolicy:BucketPolicy",
        (i) => {
          const doc = JSON.parse(i.policy);
          doc.Statement.push({
            Sid: "Open",
            Effect: "Allow",
            Principal: "*",
            Action: "s3:GetObject",
            Resource: "*",
          });
          i.policy = JSON.stringify(doc);
        },
        "aws-storage-chunks",
      ),
      noPublicS3,
      /Open allows everyone/,
    );
  });

  it("ACLs re-enabled", () => {
    expectFails(
      mutate(
        dev,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        (i) => (i.rule.objectOwnership = "ObjectWriter"),
      ),
      noPublicS3,
      /BucketOwnerEnforced/,
    );
  });

  it("an unencrypted database", () => {
    expectFails(
      mutate(dev, "aws:rds/instance:Instance", (i) => (i.storageEncrypted = false)),
      encryptionAtRest,
      /storageEncrypted/,
    );
  });

  it("a bucket encryption rule without an algorithm", () => {
    expectFails(
      mutate(
        dev,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        (i) => (i.rules = [{}]),
      ),
      encryptionAtRest,
      /is not an encryption/,
    );
  });

  it("an alarm topic encrypted with the AWS-managed key (alias or alias ARN), which CloudWatch cannot use", () => {
    for (const key of ["alias/aws/sns", "arn:aws:kms:us-east-1:123456789012:alias/aws/sns"]) {
      expectFails(
        mutate(dev, "aws:sns/topic:Topic", (i) => (i.kmsMasterKeyId = key)),
        deliverableAlarms,
        /CloudWatch cannot publish to a topic encrypted with the AWS-managed key/,
      );
    }
  });

  it("accepts an alarm topic without encryption or with a customer-managed key", () => {
    expect(violations(dev.resources, deliverableAlarms)).toEqual([]);
    expect(
      violations(
        mutate(dev, "aws:sns/topic:Topic", (i) => (i.kmsMasterKeyId = "alias/attic-alarms")),
        deliverableAlarms,
      ),
    ).toEqual([]);
  });

  it("a topic policy that lets EventBridge publish but no longer CloudWatch (it replaces the default policy)", () => {
    expectFails(
      mutate(dev, "aws:sns/topicPolicy:TopicPolicy", (i) => {
        const doc = JSON.parse(i.policy);
        doc.Statement = doc.Statement.filter(
          (st: { Principal: { Service: string } }) => st.Principal.Service !== "cloudwatch.amazonaws.com",
        );
        i.policy = JSON.stringify(doc);
      }),
      deliverableAlarms,
      /does not allow cloudwatch\.amazonaws\.com sns:Publish: every CloudWatch alarm on the topic would stop delivering/,
    );
  });

  it("a public, unprotected database with one day of backups", () => {
    const found = violations(
      mutate(dev, "aws:rds/instance:Instance", (i) => {
        i.publiclyAccessible = true;
        i.deletionProtection = false;
        i.backupRetentionPeriod = 1;
      }),
      databaseSafety,
    );
    expect(found.map((f) => f.split(": ").at(-1))).toEqual([
      "publiclyAccessible must be false",
      "deletionProtection must be true",
      "backupRetentionPeriod 1 is below 7 days",
    ]);
  });

  it("one day short of the backup minimum config shares with the pack fails; the minimum itself passes", () => {
    const days = (n: number) =>
      violations(
        mutate(dev, "aws:rds/instance:Instance", (i) => (i.backupRetentionPeriod = n)),
        databaseSafety,
      );
    expect(days(MIN_BACKUP_RETENTION_DAYS - 1)).toEqual([
      `rds-private-protected-backed-up: aws-database-postgres: backupRetentionPeriod ${MIN_BACKUP_RETENTION_DAYS - 1} is below ${MIN_BACKUP_RETENTION_DAYS} days`,
    ]);
    expect(days(MIN_BACKUP_RETENTION_DAYS)).toEqual([]);
  });

  it("the database port open to the internet", () => {
    expectFails(
      mutate(
        dev,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        (i) => {
          delete i.referencedSecurityGroupId;
          i.cidrIpv4 = "0.0.0.0/0";
        },
        "aws-sg-database-from-tasks",
      ),
      noOpenIngress,
      /ports 5432-5432/,
    );
  });

  it("an inline world-open rule on a security group", () => {
    expectFails(
      mutate(
        dev,
        "aws:ec2/securityGroup:SecurityGroup",
        (i) => (i.ingress = [{ cidrBlocks: ["0.0.0.0/0"], fromPort: 22, toPort: 22 }]),
        "aws-sg-tasks",
      ),
      noOpenIngress,
      /ports 22-22/,
    );
  });

  it("s3 actions on *", () => {
    expectFails(
      mutate(
        dev,
        "aws:iam/rolePolicy:RolePolicy",
        (i) => {
          const doc = JSON.parse(i.policy);
          doc.Statement[0].Resource = ["*"];
          i.policy = JSON.stringify(doc);
        },
        "aws-ecs-task",
      ),
      noWildcardDataAccess,
      /s3:GetObject, s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload on \*/,
    );
  });

  it("secretsmanager:GetSecretValue on *", () => {
    expectFails(
      mutate(
        dev,
        "aws:iam/rolePolicy:RolePolicy",
        (i) => {
          const doc = JSON.parse(i.policy);
          doc.Statement[1].Resource = "*";
          i.policy = JSON.stringify(doc);
        },
        "aws-ecs-execution",
      ),
      noWildcardDataAccess,
      /secretsmanager:GetSecretValue on \*/,
    );
  });

  it("a password in a task's environment", () => {
    expectFails(
      mutate(
        dev,
        "aws:ecs/taskDefinition:TaskDefinition",
        (i) => {
          const c = JSON.parse(i.containerDefinitions);
          c[0].environment.push({ name: "PGPASSWORD", value: "hunter2" });
          i.containerDefinitions = JSON.stringify(c);
        },
        "aws-ecs-api",
      ),
      noPlaintextSecretsInTasks,
      /PGPASSWORD looks like a secret/,
    );
  });

  it("a signing secret inside the base64 config in a task's environment", () => {
    expectFails(
      mutate(
        dev,
        "aws:ecs/taskDefinition:TaskDefinition",
        (i) => {
          const c = JSON.parse(i.containerDefinitions);
          const env = c[1].environment.find((e: { name: string }) => e.name === "ATTIC_SERVER_CONFIG_BASE64");
          const toml = `${Buffer.from(env.value, "base64").toString()}\n[jwt.signing]\ntoken-rs256-secret-base64 = "x"\n`;
          env.value = Buffer.from(toml).toString("base64");
          i.containerDefinitions = JSON.stringify(c);
        },
        "aws-ecs-api",
      ),
      noPlaintextSecretsInTasks,
      /the value of ATTIC_SERVER_CONFIG_BASE64 contains a secret/,
    );
  });

  it("a provider without the required tags", () => {
    expectFails(
      mutate(
        dev,
        "pulumi:providers:aws",
        (i) => (i.defaultTags = JSON.stringify({ tags: { project: "n3x" } })),
      ),
      requiredTags,
      /defaultTags lacks attic-infra:stack/,
    );
  });

  it("an HTTPS listener allowing TLS 1.0", () => {
    expectFails(
      mutate(
        dev,
        "aws:lb/listener:Listener",
        (i) => (i.sslPolicy = "ELBSecurityPolicy-2016-08"),
        "aws-lb-https",
      ),
      tlsListeners,
      /ELBSecurityPolicy-2016-08 allows TLS older than 1.2/,
    );
  });

  it("an office SSH connection without a host key", () => {
    expectFails(
      mutate(office, "command:remote:Command", (i) => delete i.connection.hostKey, "office-host"),
      pinnedHostKeys,
      /connection.hostKey is not set/,
    );
  });

  it("an office deploy without a host key", () => {
    expectFails(
      mutate(office, "command:local:Command", (i) => (i.environment.NIXOS_HOST_KEY = ""), "office-deploy"),
      pinnedHostKeys,
      /NIXOS_HOST_KEY is empty/,
    );
  });

  it("a switch connection without a host key", () => {
    expectFails(
      mutate(
        office,
        "command:local:Command",
        (i) => (i.environment.ROUTEROS_HOST_KEY = ""),
        "mikrotik-apply",
      ),
      pinnedHostKeys,
      /ROUTEROS_HOST_KEY is empty/,
    );
  });
});
