/**
 * Deterministic fakes for what a mock runtime cannot know: ids, ARNs, generated passwords, keys.
 * Every fake secret contains SYNTHSECRET so a leak into a rendered file is greppable. The token
 * signing key is a real (throwaway, published) RSA key so that minted tokens can be verified.
 */
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";

export const SECRET_MARKER = "SYNTHSECRET";
export const ACCOUNT_ID = "123456789012";

export const FIXTURE_SIGNING_KEY_PEM = readFileSync(
  path.join(__dirname, "synth-token-signing-key.pem"),
  "utf8",
);

const hash = (...parts: string[]) => createHash("sha256").update(parts.join("\0")).digest("hex");

/** The AWS id prefix and ARN shape of the types we create; anything else gets a generic fake. */
const AWS_IDS: Record<
  string,
  { prefix?: string; arn?: (name: string, id: string, region: string) => string }
> = {
  "aws:ec2/vpc:Vpc": { prefix: "vpc-" },
  "aws:ec2/subnet:Subnet": { prefix: "subnet-" },
  "aws:ec2/securityGroup:SecurityGroup": { prefix: "sg-" },
  "aws:ec2/internetGateway:InternetGateway": { prefix: "igw-" },
  "aws:ec2/natGateway:NatGateway": { prefix: "nat-" },
  "aws:ec2/eip:Eip": { prefix: "eipalloc-" },
  "aws:ec2/routeTable:RouteTable": { prefix: "rtb-" },
  "aws:ec2/vpcEndpoint:VpcEndpoint": { prefix: "vpce-" },
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": { prefix: "sgr-" },
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": { prefix: "sgr-" },
  "aws:s3/bucket:Bucket": { arn: (name) => `arn:aws:s3:::${name}` },
  "aws:rds/instance:Instance": { prefix: "db-" },
  "aws:secretsmanager/secret:Secret": {
    arn: (name, id, region) =>
      `arn:aws:secretsmanager:${region}:${ACCOUNT_ID}:secret:${name}-${id.slice(-6)}`,
  },
};

/** The id the mocks give an AWS resource of this type and logical name. */
export function fakeAwsId(type: string, name: string): string {
  const known = AWS_IDS[type];
  const suffix = hash(type, name).slice(0, 17);
  return known?.prefix ? `${known.prefix}${suffix}` : `${name}-${suffix.slice(0, 8)}`;
}

function awsFakes(type: string, name: string, inputs: Record<string, unknown>, region: string) {
  const [, module, kind] = /^aws:([^/]+)\/([^:]+):/.exec(type) ?? [];
  const known = AWS_IDS[type];
  const suffix = hash(type, name).slice(0, 17);
  const id = fakeAwsId(type, name);
  const arn = known?.arn
    ? known.arn(name, id, region)
    : `arn:aws:${module}:${region}:${ACCOUNT_ID}:${kind}/${id}`;
  // Pulumi auto-names a resource whose `name` is not given: the logical name plus a random suffix
  // (the provider's Check). Types without a `name` output ignore it.
  const state: Record<string, unknown> = { arn, id, name: inputs.name ?? `${name}-${suffix.slice(0, 7)}` };
  switch (type) {
    case "aws:route53/record:Record":
      Object.assign(state, { fqdn: String(inputs.name).replace(/\.$/, "") });
      break;
    case "aws:s3/bucket:Bucket": {
      const bucket = (inputs.bucket as string | undefined) ?? `${name}-${suffix.slice(0, 7)}`;
      Object.assign(state, {
        bucket,
        arn: `arn:aws:s3:::${bucket}`,
        bucketRegionalDomainName: `${bucket}.s3.${region}.amazonaws.com`,
        region,
      });
      return { id: bucket, state };
    }
    case "aws:rds/instance:Instance":
      Object.assign(state, {
        identifier: inputs.identifier ?? `${name}-${suffix.slice(0, 7)}`,
        address: `${inputs.identifier ?? name}.c${suffix.slice(0, 12)}.${region}.rds.amazonaws.com`,
        port: inputs.port ?? 5432,
        endpoint: `${inputs.identifier ?? name}.c${suffix.slice(0, 12)}.${region}.rds.amazonaws.com:5432`,
        resourceId: `db-${suffix.toUpperCase()}`,
      });
      break;
    case "aws:lb/loadBalancer:LoadBalancer":
      Object.assign(state, {
        dnsName: `${name}-${suffix.slice(0, 10)}.${region}.elb.amazonaws.com`,
        arnSuffix: `app/${name}/${suffix.slice(0, 16)}`,
        zoneId: "Z35SXDOTRQ7X7K",
      });
      break;
    case "aws:lb/targetGroup:TargetGroup":
      Object.assign(state, { arnSuffix: `targetgroup/${name}/${suffix.slice(0, 16)}` });
      break;
    case "aws:ecs/cluster:Cluster":
      Object.assign(state, { name: inputs.name ?? name });
      break;
    case "aws:rds/parameterGroup:ParameterGroup":
      // Pulumi auto-names it like a bucket: the logical name and a random suffix.
      Object.assign(state, { name: inputs.name ?? `${name}-${suffix.slice(0, 7)}` });
      break;
    case "aws:cloudwatch/logGroup:LogGroup":
      Object.assign(state, {
        name: inputs.name ?? name,
        arn: `arn:aws:logs:${region}:${ACCOUNT_ID}:log-group:${inputs.name ?? name}`,
      });
      break;
    case "aws:acm/certificate:Certificate":
      Object.assign(state, {
        domainValidationOptions: [
          {
            domainName: inputs.domainName,
            resourceRecordName: `_${suffix.slice(0, 12)}.${inputs.domainName}.`,
            resourceRecordType: "CNAME",
            resourceRecordValue: `_${suffix.slice(12)}.acm-validations.aws.`,
          },
        ],
      });
      break;
  }
  return { id, state };
}

const publicKeyPem = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();
const privateKeyPkcs8 = createPrivateKey(FIXTURE_SIGNING_KEY_PEM)
  .export({ type: "pkcs8", format: "pem" })
  .toString();

export function makeMocks(region: string): pulumi.runtime.Mocks {
  return {
    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
      const inputs = args.inputs as Record<string, unknown>;
      switch (args.type) {
        case "tls:index/privateKey:PrivateKey":
          return {
            id: `${args.name}-${hash(args.name).slice(0, 8)}`,
            state: {
              ...inputs,
              privateKeyPem: FIXTURE_SIGNING_KEY_PEM,
              privateKeyPemPkcs8: privateKeyPkcs8,
              publicKeyPem,
            },
          };
        case "random:index/randomPassword:RandomPassword":
          return {
            id: "none",
            state: { ...inputs, result: `${SECRET_MARKER}-${hash(args.name).slice(0, 24)}` },
          };
      }
      if (args.type.startsWith("pulumi-nodejs:dynamic")) {
        return { id: `${args.name}-id`, state: { ...inputs, ...dynamicFakes(inputs) } };
      }
      if (args.type.startsWith("aws:")) {
        const { id, state } = awsFakes(args.type, args.name, inputs, region);
        return { id, state: { ...inputs, ...state } };
      }
      return { id: `${args.name}-${hash(args.type, args.name).slice(0, 8)}`, state: inputs };
    },
    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
      switch (args.token) {
        case "aws:index/getAvailabilityZones:getAvailabilityZones":
          return {
            names: ["a", "b", "c", "d"].map((z) => `${region}${z}`),
            zoneIds: [1, 2, 3, 4].map((n) => `use1-az${n}`),
          };
        case "aws:index/getCallerIdentity:getCallerIdentity":
          return { accountId: ACCOUNT_ID, arn: `arn:aws:iam::${ACCOUNT_ID}:user/synth`, userId: "AIDASYNTH" };
        case "aws:index/getPartition:getPartition":
          return { partition: "aws", dnsSuffix: "amazonaws.com" };
        case "aws:index/getRegion:getRegion":
          return { name: region, region, id: region };
        case "aws:route53/getZone:getZone":
          return {
            zoneId: `Z${hash(String(args.inputs.name)).slice(0, 13).toUpperCase()}`,
            name: args.inputs.name,
          };
        case "aws:lb/getLoadBalancer:getLoadBalancer": {
          const arn = String(args.inputs.arn);
          const lbName = arn.split("/")[2] ?? "shared";
          return {
            arn,
            dnsName: `${lbName}-1234567890.${region}.elb.amazonaws.com`,
            zoneId: "Z35SXDOTRQ7X7K",
          };
        }
        case "aws:rds/getInstances:getInstances":
          // No instance carries this stack's tags: every synth is a new stack.
          return { id: region, instanceArns: [], instanceIdentifiers: [] };
        case "aws:elb/getServiceAccount:getServiceAccount":
          return { arn: "arn:aws:iam::127311923021:root", id: "127311923021" };
      }
      throw new Error(`synth: no mock for the call ${args.token}; add one in ci/commands/synth/mocks.ts`);
    },
  };
}

/** The attic cache provider: the public key atticd would generate (ed25519, 32 bytes) and URL. */
function dynamicFakes(inputs: Record<string, unknown>): Record<string, unknown> {
  if (typeof inputs.name !== "string" || typeof inputs.apiEndpoint !== "string") return {};
  const key = Buffer.from(hash("cache-key", inputs.apiEndpoint, inputs.name), "hex").toString("base64");
  return {
    publicKey: `${inputs.name}:${key}`,
    substituterEndpoint: `${inputs.apiEndpoint}${inputs.name}`,
    adopted: false,
  };
}
