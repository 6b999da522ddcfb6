/**
 * The AWS site, asserted on the offline synth of the dev example stack (and of a stack that adopts
 * existing infrastructure). What this proves: the resources, their inputs and options, as the
 * program registers them. What it does not: AWS's acceptance of them (no AWS here).
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse as parseToml } from "smol-toml";
import { beforeAll, describe, expect, it } from "vitest";
import { awsName, NAME_RULES } from "../components/aws/names";
import { rateExpression, serviceTimeouts } from "../components/aws/service";
import { loadConfig } from "../config/load";
import { engineVersionVerdict } from "../config/schema";
import { type SynthResource, type SynthResult, synth } from "../ci/commands/synth/harness";
import { fakeAwsId, SECRET_MARKER } from "../ci/commands/synth/mocks";
import { readStackFile } from "../ci/commands/synth/stackFile";
import { exampleBlocks, ROOT, synthExample, toConfigMap } from "./support/stacks";

const SG = "aws:ec2/securityGroup:SecurityGroup";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";
const EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule";

const all = (r: SynthResult, type: string) => r.resources.filter((e) => e.type === type);
function one(r: SynthResult, type: string, name?: string): SynthResource {
  const found = all(r, type).filter((e) => name === undefined || e.name === name);
  if (found.length !== 1) throw new Error(`expected one ${type} ${name ?? ""}, found ${found.length}`);
  return found[0]!;
}
const sgId = (name: string) => fakeAwsId(SG, name);
const containers = (r: SynthResult, name: string) =>
  JSON.parse(
    one(r, "aws:ecs/taskDefinition:TaskDefinition", name).inputs.containerDefinitions as string,
  ) as Array<Record<string, any>>;
const policyOf = (r: SynthResult, name: string) =>
  JSON.parse(one(r, "aws:iam/rolePolicy:RolePolicy", name).inputs.policy as string) as {
    Statement: Array<Record<string, any>>;
  };

let dev: SynthResult;
let devSecrets: SynthResult;
beforeAll(async () => {
  dev = await synthExample("dev");
  devSecrets = await synthExample("dev", true);
});

describe("names of the dev example (no replacement for existing stacks)", () => {
  // Pinned from the dev example before any name handling changed: a different logical name is a new
  // URN (delete + create), a different physical name a replacement — for RDS, a new database.
  const golden = JSON.parse(
    readFileSync(path.join(ROOT, "test", "golden", "aws", "dev-names.json"), "utf8"),
  ) as {
    resources: string[];
    physicalNames: Record<string, string>;
  };

  it("every resource of the pinned dev example still exists under the same type and logical name", () => {
    const now = new Set(dev.resources.filter((e) => e.custom).map((e) => `${e.type}::${e.name}`));
    expect(golden.resources.filter((r) => !now.has(r))).toEqual([]);
  });

  it("the names derived from the stack name are unchanged", () => {
    for (const [key, value] of Object.entries(golden.physicalNames)) {
      const [name, input] = [key.slice(0, key.lastIndexOf(".")), key.slice(key.lastIndexOf(".") + 1)];
      const found = dev.resources.find((e) => e.custom && e.name === name);
      expect(found?.inputs[input], key).toBe(value);
    }
  });
});

describe("network", () => {
  it("creates the VPC with two public and two private subnets and an S3 gateway endpoint", () => {
    expect(one(dev, "aws:ec2/vpc:Vpc").inputs).toMatchObject({
      cidrBlock: "10.60.0.0/16",
      enableDnsHostnames: true,
    });
    const subnets = all(dev, "aws:ec2/subnet:Subnet").map((s) => [
      s.name,
      s.inputs.cidrBlock,
      s.inputs.availabilityZone,
    ]);
    expect(subnets).toEqual([
      ["aws-network-public-0", "10.60.0.0/20", "us-east-1a"],
      ["aws-network-public-1", "10.60.16.0/20", "us-east-1b"],
      ["aws-network-private-0", "10.60.32.0/20", "us-east-1a"],
      ["aws-network-private-1", "10.60.48.0/20", "us-east-1b"],
    ]);
    expect(one(dev, "aws:ec2/vpcEndpoint:VpcEndpoint").inputs).toMatchObject({
      serviceName: "com.amazonaws.us-east-1.s3",
      vpcEndpointType: "Gateway",
    });
  });

  it("by default has no NAT gateway: tasks run in public subnets with a public IP", () => {
    expect(all(dev, "aws:ec2/natGateway:NatGateway")).toEqual([]);
    const net = one(dev, "aws:ecs/service:Service", "aws-ecs-api").inputs.networkConfiguration as Record<
      string,
      any
    >;
    expect(net.assignPublicIp).toBe(true);
    expect(net.subnets).toEqual([
      fakeAwsId("aws:ec2/subnet:Subnet", "aws-network-public-0"),
      fakeAwsId("aws:ec2/subnet:Subnet", "aws-network-public-1"),
    ]);
  });

  it("egress: nat-gateway puts tasks in private subnets behind exactly one NAT gateway", async () => {
    const blocks = exampleBlocks("dev") as Record<string, any>;
    blocks["attic-infra:aws"].network.egress = "nat-gateway";
    const r = await synth({ stack: "dev", config: toConfigMap(blocks) });
    expect(all(r, "aws:ec2/natGateway:NatGateway")).toHaveLength(1);
    const net = one(r, "aws:ecs/service:Service", "aws-ecs-api").inputs.networkConfiguration as Record<
      string,
      any
    >;
    expect(net.assignPublicIp).toBe(false);
    expect(net.subnets).toEqual([
      fakeAwsId("aws:ec2/subnet:Subnet", "aws-network-private-0"),
      fakeAwsId("aws:ec2/subnet:Subnet", "aws-network-private-1"),
    ]);
    expect(one(r, "aws:ec2/routeTable:RouteTable", "aws-network-private").inputs.routes).toEqual([
      { cidrBlock: "0.0.0.0/0", natGatewayId: fakeAwsId("aws:ec2/natGateway:NatGateway", "aws-network-nat") },
    ]);
  });
});

describe("security groups", () => {
  it("RDS accepts connections only from the task security group, on 5432", () => {
    const rules = all(dev, INGRESS).filter((e) => e.inputs.securityGroupId === sgId("aws-sg-database"));
    expect(rules.map((e) => e.inputs)).toEqual([
      expect.objectContaining({
        referencedSecurityGroupId: sgId("aws-sg-tasks"),
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
      }),
    ]);
    expect(rules[0]!.inputs).not.toHaveProperty("cidrIpv4");
  });

  it("tasks accept only the load balancer, on 8080", () => {
    const rules = all(dev, INGRESS).filter((e) => e.inputs.securityGroupId === sgId("aws-sg-tasks"));
    expect(rules.map((e) => e.inputs)).toEqual([
      expect.objectContaining({
        referencedSecurityGroupId: sgId("aws-sg-alb"),
        fromPort: 8080,
        toPort: 8080,
      }),
    ]);
  });

  it("0.0.0.0/0 ingress exists only on the ALB, on 80 and 443", () => {
    const open = all(dev, INGRESS).filter((e) => e.inputs.cidrIpv4 === "0.0.0.0/0");
    expect(open.map((e) => [e.inputs.securityGroupId, e.inputs.fromPort, e.inputs.toPort]).sort()).toEqual([
      [sgId("aws-sg-alb"), 443, 443],
      [sgId("aws-sg-alb"), 80, 80],
    ]);
  });

  it("every rule is its own resource; groups carry no inline rules", () => {
    for (const g of all(dev, SG)) {
      expect(g.inputs).not.toHaveProperty("ingress");
      expect(g.inputs).not.toHaveProperty("egress");
    }
    expect(
      all(dev, EGRESS)
        .map((e) => e.name)
        .sort(),
    ).toEqual(["aws-sg-alb-to-tasks", "aws-sg-tasks-https", "aws-sg-tasks-to-database"]);
  });
});

describe("the chunk bucket", () => {
  const bucket = () => one(dev, "aws:s3/bucket:Bucket", "aws-storage-chunks");
  const onChunks = (type: string) => one(dev, type, "aws-storage-chunks").inputs;

  it("is protected and retained on delete (losing it orphans the cache)", () => {
    expect(bucket().options).toMatchObject({ protect: true, retainOnDelete: true });
    expect(bucket().inputs.forceDestroy).toBe(false);
  });

  it("keeps what makes it private, encrypted, versioned and TLS-only when it is retained", () => {
    const onBucket = dev.resources.filter((e) => e.custom && e.name === "aws-storage-chunks");
    expect(onBucket.map((e) => e.type).sort()).toEqual([
      "aws:s3/bucket:Bucket",
      "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
      "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
      "aws:s3/bucketPolicy:BucketPolicy",
      "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
      "aws:s3/bucketVersioning:BucketVersioning",
    ]);
    for (const e of onBucket) expect(e.options.retainOnDelete, e.type).toBe(true);
  });

  it("is never public: all four public access blocks, owner-enforced, no ACLs", () => {
    expect(onChunks("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")).toMatchObject({
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    expect(onChunks("aws:s3/bucketOwnershipControls:BucketOwnershipControls")).toMatchObject({
      rule: { objectOwnership: "BucketOwnerEnforced" },
    });
    expect(all(dev, "aws:s3/bucketAcl:BucketAcl")).toEqual([]);
  });

  it("is encrypted (SSE-S3) and versioned", () => {
    expect(
      onChunks("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"),
    ).toMatchObject({
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
    });
    expect(onChunks("aws:s3/bucketVersioning:BucketVersioning")).toMatchObject({
      versioningConfiguration: { status: "Enabled" },
    });
  });

  it("its policy only denies non-TLS access, with no VPC-endpoint lock (clients follow presigned redirects)", () => {
    const policy = JSON.parse(onChunks("aws:s3/bucketPolicy:BucketPolicy").policy as string);
    expect(policy.Statement).toEqual([
      expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
    ]);
    expect(JSON.stringify(policy)).not.toMatch(/sourceVpc/i);
  });

  it("lifecycle: abort uploads after 7 days, tier objects > 128 KiB, expire noncurrent versions, never current objects", () => {
    const rules = onChunks("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").rules as Array<
      Record<string, any>
    >;
    expect(rules).toEqual([
      {
        id: "abort-incomplete-multipart-uploads",
        status: "Enabled",
        filter: {},
        abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
      },
      {
        id: "intelligent-tiering",
        status: "Enabled",
        filter: { objectSizeGreaterThan: 131072 },
        transitions: [{ days: 30, storageClass: "INTELLIGENT_TIERING" }],
      },
      {
        id: "expire-noncurrent-versions",
        status: "Enabled",
        filter: {},
        noncurrentVersionExpiration: { noncurrentDays: 30 },
        expiration: { expiredObjectDeleteMarker: true },
      },
    ]);
    for (const rule of rules) {
      expect(rule.expiration?.days).toBeUndefined();
      expect(rule.expiration?.date).toBeUndefined();
    }
  });
});

describe("the database", () => {
  const rds = () => one(dev, "aws:rds/instance:Instance");

  it("its password secret is retained with it: the retained instance and its snapshots still need it", () => {
    for (const type of ["aws:secretsmanager/secret:Secret", "aws:secretsmanager/secretVersion:SecretVersion"])
      expect(one(dev, type, "aws-database-password").options.retainOnDelete, type).toBe(true);
  });

  it("is protected, retained on delete, deletion-protected, with a deterministic final snapshot", () => {
    expect(rds().options).toMatchObject({ protect: true, retainOnDelete: true });
    expect(rds().inputs).toMatchObject({
      deletionProtection: true,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: "attic-infra-dev-final",
      copyTagsToSnapshot: true,
    });
  });

  it("is private, encrypted, gp3 with autoscaling, backed up, with Performance Insights", () => {
    expect(rds().inputs).toMatchObject({
      engine: "postgres",
      engineVersion: "16",
      instanceClass: "db.t4g.micro",
      storageType: "gp3",
      allocatedStorage: 20,
      maxAllocatedStorage: 100,
      storageEncrypted: true,
      publiclyAccessible: false,
      multiAz: false,
      backupRetentionPeriod: 7,
      performanceInsightsEnabled: true,
      vpcSecurityGroupIds: [sgId("aws-sg-database")],
    });
    expect(rds().inputs).not.toHaveProperty("manageMasterUserPassword");
    expect(one(dev, "aws:rds/subnetGroup:SubnetGroup").inputs.subnetIds).toEqual([
      fakeAwsId("aws:ec2/subnet:Subnet", "aws-network-private-0"),
      fakeAwsId("aws:ec2/subnet:Subnet", "aws-network-private-1"),
    ]);
  });

  it("forces TLS through its parameter group", () => {
    expect(one(dev, "aws:rds/parameterGroup:ParameterGroup").inputs).toMatchObject({
      family: "postgres16",
      parameters: [{ name: "rds.force_ssl", value: "1" }],
    });
  });

  it("its password is a generated secret, kept in Secrets Manager", () => {
    expect(rds().inputs.password).toBe("[secret]");
    expect(one(devSecrets, "aws:secretsmanager/secretVersion:SecretVersion").inputs.secretString).toMatch(
      SECRET_MARKER,
    );
  });
});

describe("ECS", () => {
  it("the api task runs migrations first (not essential), then the api server with a /bin/wget health check", () => {
    const [migrate, attic] = containers(dev, "aws-ecs-api");
    expect(migrate).toMatchObject({
      name: "migrate",
      essential: false,
      command: ["--mode", "db-migrations"],
    });
    expect(attic).toMatchObject({
      name: "attic",
      essential: true,
      command: ["--mode", "api-server"],
      dependsOn: [{ containerName: "migrate", condition: "SUCCESS" }],
      portMappings: [{ containerPort: 8080, protocol: "tcp" }],
      healthCheck: expect.objectContaining({
        command: ["CMD", "/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"],
      }),
    });
    for (const c of [migrate!, attic!])
      expect(c.image).toBe(
        "ghcr.io/zhaofengli/attic@sha256:18574aba70fc89d2b695273fbe2e7b2f8ad7e8e786b4cc535124fbe14bada1d0",
      );
  });

  it("PGPASSWORD comes from the database secret; no password anywhere in the task definition or TOML", () => {
    for (const c of containers(devSecrets, "aws-ecs-api")) {
      expect(c.secrets).toEqual([
        { name: "PGPASSWORD", valueFrom: expect.stringMatching(/^arn:aws:secretsmanager:/) },
      ]);
      expect(c.environment.map((e: { name: string }) => e.name)).toEqual([
        "ATTIC_SERVER_CONFIG_BASE64",
        "RUST_LOG",
      ]);
    }
    for (const name of ["aws-ecs-api", "aws-ecs-gc"]) {
      expect(
        one(devSecrets, "aws:ecs/taskDefinition:TaskDefinition", name).inputs.containerDefinitions,
      ).not.toContain(SECRET_MARKER);
    }
    for (const file of Object.values(devSecrets.files)) expect(file).not.toContain(SECRET_MARKER);
  });

  it("the generated secret appears only where it must: the RDS password and its Secrets Manager version", () => {
    const holders = devSecrets.resources
      .filter((e) => JSON.stringify(e.inputs).includes(SECRET_MARKER))
      .map((e) => e.type);
    expect(holders.sort()).toEqual([
      "aws:rds/instance:Instance",
      "aws:secretsmanager/secretVersion:SecretVersion",
    ]);
  });

  it("atticd's config arrives as ATTIC_SERVER_CONFIG_BASE64, exactly the api-server TOML", () => {
    const [, attic] = containers(dev, "aws-ecs-api");
    const value = attic!.environment.find(
      (e: { name: string }) => e.name === "ATTIC_SERVER_CONFIG_BASE64",
    ).value;
    expect(value).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    const toml = Buffer.from(value, "base64").toString();
    expect(toml).toBe(dev.files["aws/atticd-api-server.toml"]);
    const doc = parseToml(toml) as Record<string, any>;
    expect(doc.database.url).toMatch(
      /^postgresql:\/\/attic@aws-database-postgres\..*:5432\/attic\?sslmode=require$/,
    );
    expect(doc.storage).toEqual({
      type: "s3",
      region: "us-east-1",
      bucket: expect.stringMatching(/^aws-storage-chunks-/),
    });
    expect(doc.jwt.signing).toHaveProperty("token-rs256-pubkey-base64");
    expect(toml).not.toContain("PRIVATE KEY");
  });

  it("the api service deploys with a rollback circuit breaker on ARM64, autoscaled on CPU and requests", () => {
    const svc = one(dev, "aws:ecs/service:Service", "aws-ecs-api");
    expect(svc.inputs).toMatchObject({
      desiredCount: 1,
      launchType: "FARGATE",
      deploymentCircuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriodSeconds: 120,
      loadBalancers: [expect.objectContaining({ containerName: "attic", containerPort: 8080 })],
    });
    expect(svc.options.ignoreChanges).toEqual(["desiredCount"]);
    expect(one(dev, "aws:ecs/taskDefinition:TaskDefinition", "aws-ecs-api").inputs.runtimePlatform).toEqual({
      operatingSystemFamily: "LINUX",
      cpuArchitecture: "ARM64",
    });
    expect(one(dev, "aws:appautoscaling/target:Target").inputs).toMatchObject({
      minCapacity: 1,
      maxCapacity: 3,
    });
    const requests = one(dev, "aws:appautoscaling/policy:Policy", "aws-ecs-api-requests").inputs
      .targetTrackingScalingPolicyConfiguration as Record<string, any>;
    expect(requests.targetValue).toBe(1000);
    expect(requests.predefinedMetricSpecification.resourceLabel).toMatch(
      /^app\/aws-lb-alb\/[0-9a-f]+\/targetgroup\/aws-lb-attic\/[0-9a-f]+$/,
    );
    expect(
      one(dev, "aws:appautoscaling/policy:Policy", "aws-ecs-api-cpu").inputs
        .targetTrackingScalingPolicyConfiguration,
    ).toMatchObject({
      targetValue: 70,
      predefinedMetricSpecification: { predefinedMetricType: "ECSServiceAverageCPUUtilization" },
    });
  });

  it("garbage collection is a scheduled one-shot task every 12 hours, not an always-on service", () => {
    expect(containers(dev, "aws-ecs-gc")).toEqual([
      expect.objectContaining({ name: "gc", command: ["--mode", "garbage-collector-once"] }),
    ]);
    expect(all(dev, "aws:ecs/service:Service").map((s) => s.name)).toEqual(["aws-ecs-api"]);
    const schedule = one(dev, "aws:scheduler/schedule:Schedule").inputs as Record<string, any>;
    expect(schedule.scheduleExpression).toBe("rate(12 hours)");
    expect(schedule.target.ecsParameters).toMatchObject({ taskCount: 1, launchType: "FARGATE" });
  });

  it("the GC schedule sits in a group of its own, is explicitly enabled, and retries a failed start", () => {
    const schedule = one(dev, "aws:scheduler/schedule:Schedule").inputs as Record<string, any>;
    const group = one(dev, "aws:scheduler/scheduleGroup:ScheduleGroup", "aws-ecs-gc-group");
    expect(schedule.groupName).toMatch(/^aws-ecs-gc-group-[0-9a-f]{7}$/);
    expect(group.inputs).toEqual({});
    // A schedule disabled by hand (a restore pauses GC) is then drift, undone by `up --refresh`.
    expect(schedule.state).toBe("ENABLED");
    expect(schedule.target.retryPolicy).toEqual({ maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 });
    expect((dev.outputs.aws as Record<string, any>).gcSchedule).toEqual({
      name: expect.stringMatching(/^aws-ecs-gc-/),
      group: schedule.groupName,
    });
  });

  it("rate expressions follow the GC interval", () => {
    expect(rateExpression("1 day")).toBe("rate(1 day)");
    expect(rateExpression("36h")).toBe("rate(36 hours)");
    expect(rateExpression("90 min")).toBe("rate(90 minutes)");
    expect(rateExpression("0s")).toBeUndefined();
  });
});

describe("IAM", () => {
  it("the task role may only read, write and delete chunks and list the bucket", () => {
    const bucketArn = `arn:aws:s3:::${(parseToml(dev.files["aws/atticd-api-server.toml"]!) as any).storage.bucket}`;
    expect(policyOf(dev, "aws-ecs-task").Statement).toEqual([
      {
        Sid: "AtticChunkObjects",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        Resource: [`${bucketArn}/*`],
      },
      { Sid: "AtticChunkBucket", Effect: "Allow", Action: ["s3:ListBucket"], Resource: [bucketArn] },
    ]);
  });

  it("the execution role may write to its log group and read exactly the database secret", () => {
    expect(policyOf(dev, "aws-ecs-execution").Statement).toEqual([
      {
        Sid: "Logs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: ["arn:aws:logs:us-east-1:123456789012:log-group:/attic-infra/dev:*"],
      },
      {
        Sid: "DatabasePassword",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue"],
        Resource: [
          expect.stringMatching(
            /^arn:aws:secretsmanager:us-east-1:123456789012:secret:aws-database-password-/,
          ),
        ],
      },
    ]);
  });

  it("the GC scheduler may run only the GC task (any revision of its family), in this cluster, and pass only the two task roles", () => {
    const [run, pass] = policyOf(dev, "aws-ecs-gc-scheduler").Statement;
    const family = one(dev, "aws:ecs/taskDefinition:TaskDefinition", "aws-ecs-gc").inputs.family;
    expect(family).toBe("attic-infra-dev-gc");
    // Every revision: the schedule never points at a revision its role cannot run, even while a
    // deploy has updated one and not yet the other.
    expect(run).toMatchObject({
      Action: ["ecs:RunTask"],
      Resource: [`arn:aws:ecs:us-east-1:123456789012:task-definition/${family}:*`],
    });
    expect(run!.Condition).toEqual({ ArnEquals: { "ecs:cluster": expect.stringMatching(/^arn:aws:ecs:/) } });
    expect(pass).toMatchObject({
      Action: ["iam:PassRole"],
      Resource: [expect.any(String), expect.any(String)],
    });
  });

  it("no statement grants s3 or secretsmanager actions on *", () => {
    for (const p of all(dev, "aws:iam/rolePolicy:RolePolicy")) {
      for (const st of JSON.parse(p.inputs.policy as string).Statement) {
        if (st.Action.some((a: string) => /^(s3|secretsmanager):/.test(a)))
          expect(st.Resource).not.toContain("*");
      }
    }
  });
});

describe("load balancer, TLS and DNS", () => {
  it("the ALB keeps idle connections an hour (streamed NAR uploads) and drops invalid headers", () => {
    expect(one(dev, "aws:lb/loadBalancer:LoadBalancer").inputs).toMatchObject({
      internal: false,
      idleTimeout: 3600,
      dropInvalidHeaderFields: true,
      accessLogs: expect.objectContaining({ enabled: true }),
    });
  });

  it("targets are health-checked with GET / expecting 200 (there is no /v1/healthz)", () => {
    expect(one(dev, "aws:lb/targetGroup:TargetGroup").inputs).toMatchObject({
      port: 8080,
      protocol: "HTTP",
      targetType: "ip",
      healthCheck: expect.objectContaining({ path: "/", matcher: "200" }),
    });
  });

  it("HTTPS uses a TLS 1.3/1.2 policy; HTTP only redirects to HTTPS", () => {
    expect(one(dev, "aws:lb/listener:Listener", "aws-lb-https").inputs).toMatchObject({
      port: 443,
      protocol: "HTTPS",
      sslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
    });
    expect(one(dev, "aws:lb/listener:Listener", "aws-lb-http").inputs.defaultActions).toEqual([
      { type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } },
    ]);
  });

  it("the certificate is DNS-validated in the zone, and the host name aliases the ALB", () => {
    expect(one(dev, "aws:acm/certificate:Certificate").inputs).toMatchObject({
      domainName: "attic.example.com",
      validationMethod: "DNS",
    });
    expect(one(dev, "aws:route53/record:Record", "aws-tls-alias").inputs).toMatchObject({
      name: "attic.example.com",
      type: "A",
      aliases: [expect.objectContaining({ evaluateTargetHealth: true })],
    });
  });
});

describe("monitoring", () => {
  it("has the eight alarms on one topic, with an email subscription", () => {
    const alarms = all(dev, "aws:cloudwatch/metricAlarm:MetricAlarm");
    expect(alarms.map((a) => a.name).sort()).toEqual([
      "aws-monitoring-alb-unhealthy-targets",
      "aws-monitoring-api-no-running-task",
      "aws-monitoring-bucket-size",
      "aws-monitoring-gc-invocation-dropped",
      "aws-monitoring-http-5xx",
      "aws-monitoring-rds-cpu",
      "aws-monitoring-rds-free-storage",
      "aws-monitoring-rds-freeable-memory",
    ]);
    const topic = fakeAwsId("aws:sns/topic:Topic", "aws-monitoring-alarms");
    for (const a of alarms) expect(JSON.stringify(a.inputs.alarmActions)).toContain(topic);
    expect(one(dev, "aws:sns/topicSubscription:TopicSubscription").inputs).toMatchObject({
      protocol: "email",
      endpoint: "ops@example.com",
    });
  });

  it("alarm thresholds: no healthy task, unhealthy 5 min, 5XX > 10/min, RDS CPU > 80 % for 10 min, < 2 GiB free", () => {
    const a = (n: string) => one(dev, "aws:cloudwatch/metricAlarm:MetricAlarm", `aws-monitoring-${n}`).inputs;
    expect(a("api-no-running-task")).toMatchObject({
      metricName: "HealthyHostCount",
      threshold: 1,
      comparisonOperator: "LessThanThreshold",
      treatMissingData: "breaching",
    });
    expect(a("alb-unhealthy-targets")).toMatchObject({ threshold: 0, period: 60, evaluationPeriods: 5 });
    expect(a("http-5xx")).toMatchObject({ threshold: 10, comparisonOperator: "GreaterThanThreshold" });
    expect(a("rds-cpu")).toMatchObject({ threshold: 80, period: 300, evaluationPeriods: 2 });
    expect(a("rds-free-storage")).toMatchObject({
      threshold: 2 * 1024 ** 3,
      comparisonOperator: "LessThanThreshold",
    });
    expect(a("bucket-size")).toMatchObject({ threshold: 500 * 1024 ** 3 });
    expect(all(dev, "aws:cloudwatch/dashboard:Dashboard")).toHaveLength(1);
  });

  it("RDS FreeableMemory below 100 MiB for 15 minutes (a db.t4g.micro has 1 GiB)", () => {
    expect(
      one(dev, "aws:cloudwatch/metricAlarm:MetricAlarm", "aws-monitoring-rds-freeable-memory").inputs,
    ).toMatchObject({
      namespace: "AWS/RDS",
      metricName: "FreeableMemory",
      dimensions: { DBInstanceIdentifier: expect.stringMatching(/^aws-database-postgres-/) },
      statistic: "Minimum",
      period: 300,
      evaluationPeriods: 3,
      comparisonOperator: "LessThanThreshold",
      threshold: 100 * 1024 ** 2,
    });
  });

  it("a GC run the scheduler could not start, retries included, is an alarm on the stack's own schedule group", () => {
    const group = (one(dev, "aws:scheduler/schedule:Schedule").inputs as Record<string, any>).groupName;
    expect(
      one(dev, "aws:cloudwatch/metricAlarm:MetricAlarm", "aws-monitoring-gc-invocation-dropped").inputs,
    ).toMatchObject({
      namespace: "AWS/Scheduler",
      metricName: "InvocationDroppedCount",
      dimensions: { ScheduleGroup: group },
      statistic: "Sum",
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: 1,
      treatMissingData: "notBreaching",
    });
  });

  const rule = (id: string) =>
    JSON.parse(
      one(dev, "aws:cloudwatch/eventRule:EventRule", `aws-monitoring-${id}`).inputs.eventPattern as string,
    );

  it("a failed GC task (non-zero exit or never started) is an AWS event routed to the alarm topic", () => {
    const cluster = fakeAwsId("aws:ecs/cluster:Cluster", "aws-ecs-cluster");
    expect(rule("gc-task-failed")).toEqual({
      source: ["aws.ecs"],
      "detail-type": ["ECS Task State Change"],
      detail: {
        clusterArn: [`arn:aws:ecs:us-east-1:123456789012:cluster/${cluster}`],
        lastStatus: ["STOPPED"],
        taskDefinitionArn: [
          { prefix: "arn:aws:ecs:us-east-1:123456789012:task-definition/attic-infra-dev-gc:" },
        ],
        $or: [{ containers: { exitCode: [{ "anything-but": 0 }] } }, { stopCode: ["TaskFailedToStart"] }],
      },
    });
  });

  it("a failed deployment of the api service (the circuit breaker's) is an AWS event routed to the alarm topic", () => {
    expect(rule("ecs-deployment-failed")).toEqual({
      source: ["aws.ecs"],
      "detail-type": ["ECS Deployment State Change"],
      resources: [
        `arn:aws:ecs:us-east-1:123456789012:service/${fakeAwsId("aws:ecs/service:Service", "aws-ecs-api")}`,
      ],
      detail: { eventName: ["SERVICE_DEPLOYMENT_FAILED"] },
    });
    const topic = `arn:aws:sns:us-east-1:123456789012:topic/${fakeAwsId("aws:sns/topic:Topic", "aws-monitoring-alarms")}`;
    const targets = all(dev, "aws:cloudwatch/eventTarget:EventTarget");
    expect(targets.map((t) => [t.name, t.inputs.arn])).toEqual([
      ["aws-monitoring-gc-task-failed", topic],
      ["aws-monitoring-ecs-deployment-failed", topic],
    ]);
    for (const t of targets) {
      expect(t.inputs.roleArn).toBeUndefined();
      // Only once the topic policy lets EventBridge publish.
      expect(t.options.dependsOn).toEqual([
        "urn:pulumi:dev::attic-infra::attic:aws:Site$attic:aws:Monitoring$aws:sns/topicPolicy:TopicPolicy::aws-monitoring-alarms",
      ]);
    }
  });

  it("the topic policy lets EventBridge's two rules publish and keeps CloudWatch's alarms publishing", () => {
    const policy = JSON.parse(
      one(dev, "aws:sns/topicPolicy:TopicPolicy", "aws-monitoring-alarms").inputs.policy as string,
    );
    const ruleArns = all(dev, "aws:cloudwatch/eventRule:EventRule").map(
      (r) => `arn:aws:cloudwatch:us-east-1:123456789012:eventRule/${fakeAwsId(r.type, r.name)}`,
    );
    expect(policy.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: "sns:Publish",
        Condition: {
          StringEquals: { "aws:SourceAccount": "123456789012" },
          ArnLike: { "aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*" },
        },
      }),
      expect.objectContaining({
        Principal: { Service: "events.amazonaws.com" },
        Action: "sns:Publish",
        Condition: { ArnEquals: { "aws:SourceArn": ruleArns } },
      }),
    ]);
  });
});

describe("tags and outputs", () => {
  it("tags every resource through the provider's defaultTags, with the stack name", () => {
    expect(one(dev, "pulumi:providers:aws").inputs.defaultTags).toEqual(
      JSON.stringify({
        tags: { project: "n3x", team: "embedded", "attic-infra:stack": "dev", "managed-by": "pulumi" },
      }),
    );
  });

  it("exports the endpoint, bucket, database, log group, alarm topic, caches and secret tokens", () => {
    const out = dev.outputs.aws as Record<string, any>;
    expect(out.endpoint).toBe("https://attic.example.com/");
    expect(out.bucketName).toMatch(/^aws-storage-chunks-/);
    expect(out.databaseEndpoint).toMatch(/\.rds\.amazonaws\.com:5432$/);
    expect(out.logGroup).toBe("/attic-infra/dev");
    expect(out.alarmTopicArn).toMatch(/^arn:aws:sns:/);
    expect(out.caches.n3x).toEqual({
      substituter: "https://attic.example.com/n3x",
      publicKey: expect.stringMatching(/^n3x:/),
      public: true,
      priority: 41,
    });
    expect(out.tokens).toBe("[secret]");
  });
});

describe("adopting existing infrastructure", () => {
  let adopt: SynthResult;
  beforeAll(async () => {
    const { config } = readStackFile(path.join(ROOT, "test", "fixtures", "Pulumi.adopt.yaml"), "attic-infra");
    adopt = await synth({ stack: "adopt", config });
  });

  it("registers no VPC, no RDS instance, no load balancer and no cluster (so no Container Insights of its own)", () => {
    for (const type of [
      "aws:ec2/vpc:Vpc",
      "aws:ec2/subnet:Subnet",
      "aws:rds/instance:Instance",
      "aws:secretsmanager/secret:Secret",
      "aws:lb/loadBalancer:LoadBalancer",
      "aws:lb/listener:Listener",
      "aws:ecs/cluster:Cluster",
      "aws:acm/certificate:Certificate",
    ]) {
      expect(all(adopt, type), type).toEqual([]);
    }
  });

  it("still wires the rest: a host-header rule on the shared listener, tasks, GC service, database access", () => {
    expect(one(adopt, "aws:lb/listenerRule:ListenerRule").inputs).toMatchObject({
      priority: 120,
      conditions: [{ hostHeader: { values: ["attic.corp.example"] } }],
    });
    const svc = one(adopt, "aws:ecs/service:Service", "aws-ecs-api").inputs as Record<string, any>;
    expect(svc.cluster).toBe("arn:aws:ecs:eu-central-1:123456789012:cluster/shared");
    expect(svc.networkConfiguration).toMatchObject({
      subnets: ["subnet-0ccc3333", "subnet-0ddd4444"],
      assignPublicIp: false,
    });
    expect(one(adopt, "aws:ecs/service:Service", "aws-ecs-gc").inputs).toMatchObject({
      desiredCount: 1,
      deploymentMinimumHealthyPercent: 0,
      deploymentMaximumPercent: 100,
    });
    expect(all(adopt, "aws:scheduler/schedule:Schedule")).toEqual([]);
    expect(all(adopt, INGRESS).find((e) => e.inputs.securityGroupId === "sg-0eee5555")?.inputs).toMatchObject(
      {
        referencedSecurityGroupId: sgId("aws-sg-tasks"),
        fromPort: 5433,
      },
    );
    expect(
      all(adopt, INGRESS).find((e) => e.inputs.securityGroupId === sgId("aws-sg-tasks"))?.inputs,
    ).toMatchObject({
      referencedSecurityGroupId: "sg-0fff6666",
    });
  });

  it("points atticd at the existing database, with the JSON key of the password secret", () => {
    const toml = parseToml(adopt.files["aws/atticd-api-server.toml"]!) as Record<string, any>;
    expect(toml.database.url).toBe(
      "postgresql://attic_app@shared-pg.corp.internal:5433/attic?sslmode=require",
    );
    const c = JSON.parse(
      one(adopt, "aws:ecs/taskDefinition:TaskDefinition", "aws-ecs-api").inputs
        .containerDefinitions as string,
    );
    expect(c[1].secrets).toEqual([
      {
        name: "PGPASSWORD",
        valueFrom: "arn:aws:secretsmanager:eu-central-1:123456789012:secret:attic-db-AbCdEf:password::",
      },
    ]);
  });

  it("the configured certificate is attached to the shared listener and retained on destroy", () => {
    const cert = one(adopt, "aws:lb/listenerCertificate:ListenerCertificate");
    expect(cert.inputs).toEqual({
      listenerArn:
        "arn:aws:elasticloadbalancing:eu-central-1:123456789012:listener/app/shared-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
      certificateArn:
        "arn:aws:acm:eu-central-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
    });
    expect(cert.options.retainOnDelete).toBe(true);
  });

  it("the tasks reach the existing database only through its security group", () => {
    expect(one(adopt, EGRESS, "aws-sg-tasks-to-database").inputs).toMatchObject({
      referencedSecurityGroupId: "sg-0eee5555",
      fromPort: 5433,
      toPort: 5433,
    });
    expect(one(adopt, EGRESS, "aws-sg-tasks-to-database").inputs).not.toHaveProperty("cidrIpv4");
  });

  it("on the shared ALB the 5XX alarm counts only this target group, not the load balancer's own 5XX", () => {
    const alarm = one(adopt, "aws:cloudwatch/metricAlarm:MetricAlarm", "aws-monitoring-http-5xx").inputs;
    expect(JSON.stringify(alarm)).not.toContain("HTTPCode_ELB_5XX_Count");
    expect(alarm.metricQueries).toContainEqual(
      expect.objectContaining({
        metric: expect.objectContaining({
          metricName: "HTTPCode_Target_5XX_Count",
          dimensions: expect.objectContaining({ TargetGroup: expect.stringMatching(/^targetgroup\//) }),
        }),
      }),
    );
  });

  it("alarms use the shared load balancer's dimension and skip the RDS alarms", () => {
    const names = all(adopt, "aws:cloudwatch/metricAlarm:MetricAlarm").map((a) => a.name);
    expect(names).not.toContain("aws-monitoring-rds-cpu");
    expect(
      one(adopt, "aws:cloudwatch/metricAlarm:MetricAlarm", "aws-monitoring-alb-unhealthy-targets").inputs
        .dimensions,
    ).toMatchObject({ LoadBalancer: "app/shared-alb/50dc6c495c0c9188" });
  });
});

describe("alarms reach someone", () => {
  it("the alarm topic is not encrypted with alias/aws/sns, which CloudWatch cannot use (no key at all)", () => {
    expect(one(dev, "aws:sns/topic:Topic").inputs).not.toHaveProperty("kmsMasterKeyId");
  });

  it("the stack output tells the subscriber to confirm the email subscription", () => {
    expect((dev.outputs.aws as Record<string, string>).alarmEmailConfirmation).toMatch(
      /ops@example\.com: click its link, or no alarm is delivered/,
    );
  });

  it("every alarm uses a free metric (no Container Insights), the ALB ones scoped to this target group", () => {
    const tg = /^targetgroup\/aws-lb-attic\//;
    for (const a of all(dev, "aws:cloudwatch/metricAlarm:MetricAlarm")) {
      expect(JSON.stringify(a.inputs), a.name).not.toContain("ContainerInsights");
      const metrics = [
        a.inputs,
        ...((a.inputs.metricQueries as Array<{ metric?: Record<string, unknown> }> | undefined) ?? []).map(
          (q) => q.metric ?? {},
        ),
      ];
      for (const m of metrics) {
        if (m.namespace !== "AWS/ApplicationELB") continue;
        if (m.metricName === "HTTPCode_ELB_5XX_Count") continue;
        expect((m.dimensions as Record<string, string>).TargetGroup, a.name).toMatch(tg);
      }
    }
    expect(
      one(dev, "aws:cloudwatch/metricAlarm:MetricAlarm", "aws-monitoring-api-no-running-task").inputs,
    ).toMatchObject({
      namespace: "AWS/ApplicationELB",
      metricName: "HealthyHostCount",
      statistic: "Minimum",
    });
  });

  it("Container Insights is off by default, explicitly, on the cluster the program creates", () => {
    expect(one(dev, "aws:ecs/cluster:Cluster").inputs.settings).toEqual([
      { name: "containerInsights", value: "disabled" },
    ]);
  });
});

describe("deploys do not cut uploads", () => {
  it("the target group drains a stopping task for 300 s and the container gets 120 s after SIGTERM", () => {
    expect(one(dev, "aws:lb/targetGroup:TargetGroup").inputs.deregistrationDelay).toBe(300);
    expect(containers(dev, "aws-ecs-api")[1]).toMatchObject({ name: "attic", stopTimeout: 120 });
  });

  it("the service's timeouts outlast drain, stop and health-check grace on top of ECS's 20 minutes", () => {
    const svc = {
      deregistrationDelaySeconds: 300,
      stopTimeoutSeconds: 120,
      healthCheckGracePeriodSeconds: 120,
    };
    expect(serviceTimeouts(svc as never)).toEqual({ create: "29m", update: "29m", delete: "29m" });
    expect(serviceTimeouts({ ...svc, deregistrationDelaySeconds: 3600 } as never).update).toBe("84m");
  });

  it("the api service is registered with those timeouts, so waitForSteadyState survives the drain", () => {
    expect(one(dev, "aws:ecs/service:Service", "aws-ecs-api").options.customTimeouts).toEqual({
      create: "29m",
      update: "29m",
      delete: "29m",
    });
  });
});

describe("trust policies", () => {
  const trust = (name: string) =>
    JSON.parse(one(dev, "aws:iam/role:Role", name).inputs.assumeRolePolicy as string).Statement[0];

  it("the task role trusts ECS tasks of this account and region only", () => {
    expect(trust("aws-ecs-task").Condition).toEqual({
      StringEquals: { "aws:SourceAccount": "123456789012" },
      ArnLike: { "aws:SourceArn": "arn:aws:ecs:us-east-1:123456789012:*" },
    });
  });

  it("the execution role trusts ECS on behalf of this account only", () => {
    expect(trust("aws-ecs-execution").Condition).toEqual({
      StringEquals: { "aws:SourceAccount": "123456789012" },
    });
  });

  it("the GC scheduler role trusts schedules of this stack's GC schedule group only", () => {
    expect(trust("aws-ecs-gc-scheduler").Condition).toEqual({
      StringEquals: { "aws:SourceAccount": "123456789012" },
      ArnLike: {
        "aws:SourceArn": `arn:aws:scheduler:us-east-1:123456789012:scheduleGroup/${fakeAwsId("aws:scheduler/scheduleGroup:ScheduleGroup", "aws-ecs-gc-group")}`,
      },
    });
  });
});

describe("RDS upgrades and storage", () => {
  it("storage autoscaling drift is ignored: allocatedStorage is only the initial size", () => {
    expect(one(dev, "aws:rds/instance:Instance").options.ignoreChanges).toEqual(["allocatedStorage"]);
  });

  it("maxStorageGb below 110 % of storageGb (20/21) is a config error naming the least value", () => {
    const blocks = exampleBlocks("dev") as Record<string, any>;
    blocks["attic-infra:aws"].database.maxStorageGb = 21;
    expect(() => loadConfig(toConfigMap(blocks))).toThrow(
      /attic-infra:aws\.database\.maxStorageGb: 21 is below 110 % of storageGb 20; RDS storage autoscaling needs at least 22/,
    );
    blocks["attic-infra:aws"].database.maxStorageGb = 22;
    expect(() => loadConfig(toConfigMap(blocks))).not.toThrow();
  });

  it("a new stack on PostgreSQL 13 (past RDS standard support) fails before anything is registered", async () => {
    const blocks = exampleBlocks("dev") as Record<string, any>;
    blocks["attic-infra:aws"].database.engineVersion = "13";
    const error = await synth({ stack: "fresh", config: toConfigMap(blocks) }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(
      /attic-infra:aws\.database\.engineVersion: PostgreSQL 13 left RDS standard support on 2026-02-28.*A new database must use a supported version: (\d+, )*18/,
    );
  });

  it("an existing instance on a past-support version only gets a warning; unknown versions are errors for new stacks", () => {
    const today = new Date("2026-11-27T12:00:00Z");
    expect(engineVersionVerdict("13", { instanceExists: true, today })).toEqual({
      warning: expect.stringMatching(/paid RDS Extended Support.*set engineVersion to 18/),
    });
    expect(engineVersionVerdict("14", { instanceExists: false, today })).toEqual({
      warning: expect.stringMatching(/leaves RDS standard support on 2027-02-28 \(in 93 days\)/),
    });
    expect(engineVersionVerdict("17", { instanceExists: false, today })).toEqual({});
    expect(engineVersionVerdict("19", { instanceExists: false, today }).error).toMatch(
      /"19" is not a PostgreSQL major version RDS offers/,
    );
    // The last day of standard support is still inside it.
    expect(
      engineVersionVerdict("13", { instanceExists: false, today: new Date("2026-02-28T20:00:00Z") }),
    ).toEqual({ warning: expect.stringMatching(/in 0 days/) });
  });
});

describe("a stack named prod_eu.v2, upgrading PostgreSQL 16 → 17", () => {
  let next: SynthResult;
  beforeAll(async () => {
    const blocks = exampleBlocks("dev") as Record<string, any>;
    blocks["attic-infra:aws"].database.engineVersion = "17";
    next = await synth({ stack: "prod_eu.v2", config: toConfigMap(blocks) });
  });

  it("synthesizes with valid snapshot, task family and dashboard names", () => {
    const snapshot = one(next, "aws:rds/instance:Instance").inputs.finalSnapshotIdentifier as string;
    expect(snapshot).toMatch(NAME_RULES.rdsSnapshot.valid);
    expect(snapshot).toMatch(/^attic-infra-prod-eu-v2-final-[0-9a-f]{6}$/);
    for (const t of all(next, "aws:ecs/taskDefinition:TaskDefinition"))
      expect(t.inputs.family).toMatch(/^attic-infra-prod_eu-v2-(api|gc)-[0-9a-f]{6}$/);
    expect(one(next, "aws:cloudwatch/dashboard:Dashboard").inputs.dashboardName).toMatch(
      NAME_RULES.dashboard.valid,
    );
  });

  it("the sanitiser keeps valid names, and keeps rewritten ones distinct and within the limit", () => {
    expect(awsName("attic-infra-dev-final", NAME_RULES.rdsSnapshot)).toBe("attic-infra-dev-final");
    const a = awsName("attic-infra-prod_eu-final", NAME_RULES.rdsSnapshot);
    const b = awsName("attic-infra-prod.eu-final", NAME_RULES.rdsSnapshot);
    expect(a).not.toBe(b);
    const long = awsName(`attic-infra-${"x.".repeat(200)}-api`, NAME_RULES.ecsFamily);
    expect(long.length).toBeLessThanOrEqual(255);
    expect(long).toMatch(NAME_RULES.ecsFamily.valid);
    expect(awsName("9--lives-", NAME_RULES.rdsSnapshot)).toMatch(NAME_RULES.rdsSnapshot.valid);
  });

  it("the instance stays on a valid parameter group through the whole 16 → 17 update", () => {
    // Pulumi's order for a replaced resource with dependents (create-before-delete, the default):
    // create the replacement, update the dependents, delete the old one last. RDS refuses to delete a
    // parameter group an instance still uses, and a modification without applyImmediately waits for
    // the maintenance window. Model those steps on what the program registers.
    const before = one(dev, "aws:rds/parameterGroup:ParameterGroup");
    const after = one(next, "aws:rds/parameterGroup:ParameterGroup");
    const instance = one(next, "aws:rds/instance:Instance");
    expect([before.inputs.family, after.inputs.family]).toEqual(["postgres16", "postgres17"]);
    expect(after.name).toBe(before.name); // same URN: a replacement, not a delete + unrelated create
    expect(after.inputs).not.toHaveProperty("name"); // auto-named: old and new can coexist
    expect(after.options.deleteBeforeReplace).toBe(false);
    expect(instance.inputs).toMatchObject({
      engineVersion: "17",
      allowMajorVersionUpgrade: true,
      applyImmediately: true,
      parameterGroupName: expect.stringMatching(/^aws-database-params-[0-9a-f]{7}$/),
    });

    const groups = new Set(["old"]);
    let attached = "old";
    const steps: Array<() => void> = [
      () => groups.add("new"),
      () => {
        if (instance.inputs.applyImmediately === true) attached = "new";
      },
      () => {
        if (attached === "old") throw new Error("InvalidDBParameterGroupState: the old group is in use");
        groups.delete("old");
      },
    ];
    for (const step of steps) {
      step();
      expect(groups.has(attached)).toBe(true);
    }
    expect([...groups]).toEqual(["new"]);
  });
});

describe("config of shared infrastructure", () => {
  const problems = (change: (aws: Record<string, any>) => void): string[] => {
    const blocks = exampleBlocks("dev") as Record<string, any>;
    change(blocks["attic-infra:aws"]);
    try {
      loadConfig(toConfigMap(blocks));
      return [];
    } catch (err) {
      return (err as { problems?: string[] }).problems ?? [String(err)];
    }
  };
  const existingVpc = (aws: Record<string, any>) =>
    (aws.network = { vpcId: "vpc-0abc", privateSubnetIds: ["subnet-0a", "subnet-0b"] });

  it("Container Insights is refused on a cluster the stack does not own", () => {
    expect(
      problems((aws) => {
        aws.containerInsights = true;
        aws.service.clusterArn = "arn:aws:ecs:us-east-1:123456789012:cluster/shared";
      }),
    ).toEqual([expect.stringMatching(/^attic-infra:aws\.containerInsights: is a setting of the cluster/)]);
  });

  it("an existing VPC needs public subnets only for a dedicated ALB or public-ip tasks", () => {
    expect(problems(existingVpc)).toEqual([
      expect.stringMatching(
        /^attic-infra:aws\.network\.publicSubnetIds: is required with vpcId and a dedicated load balancer/,
      ),
    ]);
    expect(
      problems((aws) => {
        existingVpc(aws);
        aws.loadBalancer = {
          existing: {
            listenerArn:
              "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shared/50dc6c495c0c9188/f2f7dc8efc522ab2",
            securityGroupId: "sg-0fff6666",
            rulePriority: 7,
          },
        };
      }),
    ).toEqual([]);
  });

  it("in an existing VPC the tasks default to its private subnets without public IPs", () => {
    const blocks = exampleBlocks("dev") as Record<string, any>;
    existingVpc(blocks["attic-infra:aws"]);
    blocks["attic-infra:aws"].network.publicSubnetIds = ["subnet-0c", "subnet-0d"];
    expect(loadConfig(toConfigMap(blocks)).config.aws!.network).toMatchObject({
      mode: "existing",
      egress: "nat-gateway",
    });
  });
});
