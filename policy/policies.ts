/**
 * The rules no attic-infra stack may break, checked on every preview and up
 * (`pulumi preview --policy-pack policy`). Each is a resource-level check on the properties the
 * program sets; all are mandatory. The program's own defaults pass them: these catch a future change
 * (or a hand edit) that would make a bucket public, a database reachable, or a secret plain.
 */
import type { ResourceValidationArgs, ResourceValidationPolicy, ReportViolation } from "@pulumi/policy";
import { MIN_BACKUP_RETENTION_DAYS } from "./minimums";

type Props = Record<string, any>;

const rule = (
  name: string,
  description: string,
  validate: (type: string, props: Props, report: ReportViolation, args: ResourceValidationArgs) => void,
): ResourceValidationPolicy => ({
  name,
  description,
  enforcementLevel: "mandatory",
  validateResource: (args, report) => validate(args.type, args.props, report, args),
});

const parseJson = (v: unknown): any => {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
};
const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

const PUBLIC_ACLS = ["public-read", "public-read-write", "authenticated-read"];

export const noPublicS3 = rule(
  "s3-no-public-access",
  "S3 buckets block every kind of public access, disable ACLs, and grant nothing to everyone.",
  (type, p, report) => {
    if (type === "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock") {
      for (const k of ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"]) {
        if (p[k] !== true) report(`${k} must be true`);
      }
    }
    if (
      type === "aws:s3/bucketOwnershipControls:BucketOwnershipControls" &&
      p.rule?.objectOwnership !== "BucketOwnerEnforced"
    ) {
      report("objectOwnership must be BucketOwnerEnforced (ACLs disabled)");
    }
    if (type === "aws:s3/bucketAcl:BucketAcl" && PUBLIC_ACLS.includes(p.acl))
      report(`acl ${p.acl} makes the bucket public`);
    if (type === "aws:s3/bucket:Bucket" && PUBLIC_ACLS.includes(p.acl))
      report(`acl ${p.acl} makes the bucket public`);
    if (type === "aws:s3/bucketPolicy:BucketPolicy") {
      for (const st of asArray(parseJson(p.policy)?.Statement) as Props[]) {
        const everyone =
          st.Principal === "*" || st.Principal?.AWS === "*" || asArray(st.Principal?.AWS).includes("*");
        if (st.Effect === "Allow" && everyone && !st.Condition)
          report(`statement ${st.Sid ?? ""} allows everyone`);
      }
    }
  },
);

export const encryptionAtRest = rule(
  "encryption-at-rest",
  "Buckets are encrypted by default, RDS storage is encrypted, and secrets use KMS.",
  (type, p, report) => {
    if (type === "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration") {
      const rules = asArray(p.rules) as Props[];
      if (rules.length === 0) report("no encryption rule");
      for (const r of rules) {
        const algo = r.applyServerSideEncryptionByDefault?.sseAlgorithm;
        if (!["AES256", "aws:kms", "aws:kms:dsse"].includes(algo))
          report(`sseAlgorithm ${algo} is not an encryption`);
      }
    }
    if (type === "aws:rds/instance:Instance" && p.storageEncrypted !== true)
      report("storageEncrypted must be true");
    if (type === "aws:secretsmanager/secret:Secret" && p.kmsKeyId === "") report("kmsKeyId is empty");
  },
);

/** The AWS-managed SNS key, by alias or alias ARN: its key policy cannot grant CloudWatch. */
const AWS_MANAGED_SNS_KEY = /^(alias\/aws\/sns|arn:aws[a-z-]*:kms:[^:]+:\d+:alias\/aws\/sns)$/;

/** Whether a topic policy lets CloudWatch alarms publish (an Allow of sns:Publish to cloudwatch.amazonaws.com). */
function grantsCloudWatchPublish(policy: unknown): boolean {
  return (asArray(parseJson(policy)?.Statement) as Props[]).some(
    (st) =>
      st.Effect === "Allow" &&
      asArray(st.Principal?.Service).includes("cloudwatch.amazonaws.com") &&
      asArray(st.Action).some((a) => a === "sns:Publish" || a === "sns:*" || a === "*"),
  );
}

export const deliverableAlarms = rule(
  "alarm-topic-deliverable",
  "SNS topics are not encrypted with the AWS-managed key alias/aws/sns, which CloudWatch alarms cannot publish to, and a topic policy (which replaces the default one) still lets CloudWatch publish.",
  (type, p, report) => {
    if (type === "aws:sns/topicPolicy:TopicPolicy" && !grantsCloudWatchPublish(p.policy))
      report(
        "the topic policy replaces the topic's default policy and does not allow cloudwatch.amazonaws.com sns:Publish: every CloudWatch alarm on the topic would stop delivering",
      );
    if (type !== "aws:sns/topic:Topic" || typeof p.kmsMasterKeyId !== "string") return;
    if (AWS_MANAGED_SNS_KEY.test(p.kmsMasterKeyId))
      report(
        `kmsMasterKeyId ${p.kmsMasterKeyId}: CloudWatch cannot publish to a topic encrypted with the AWS-managed key, so every alarm is dropped; use no encryption or a customer-managed key whose policy grants cloudwatch.amazonaws.com kms:Decrypt and kms:GenerateDataKey*`,
      );
  },
);

export const databaseSafety = rule(
  "rds-private-protected-backed-up",
  `The metadata database is not publicly accessible, has deletion protection and at least ${MIN_BACKUP_RETENTION_DAYS} days of backups.`,
  (type, p, report) => {
    if (type !== "aws:rds/instance:Instance") return;
    if (p.publiclyAccessible !== false) report("publiclyAccessible must be false");
    if (p.deletionProtection !== true) report("deletionProtection must be true");
    if (!(
      typeof p.backupRetentionPeriod === "number" && p.backupRetentionPeriod >= MIN_BACKUP_RETENTION_DAYS
    )) {
      report(`backupRetentionPeriod ${p.backupRetentionPeriod} is below ${MIN_BACKUP_RETENTION_DAYS} days`);
    }
  },
);

const WORLD = ["0.0.0.0/0", "::/0"];
export const noOpenIngress = rule(
  "no-world-ingress-except-https",
  "Nothing accepts connections from the whole internet except the load balancer's 80 and 443.",
  (type, p, report) => {
    const check = (cidrs: unknown[], from: number, to: number) => {
      if (!cidrs.some((c) => WORLD.includes(String(c)))) return;
      const ok = from === to && (from === 80 || from === 443);
      if (!ok)
        report(
          `ingress from the whole internet on ports ${from}-${to}; only 80 and 443 (the ALB) may be open`,
        );
    };
    if (type === "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
      check([p.cidrIpv4, p.cidrIpv6].filter(Boolean), p.fromPort ?? 0, p.toPort ?? 65535);
    }
    if (type === "aws:ec2/securityGroup:SecurityGroup") {
      for (const i of asArray(p.ingress) as Props[])
        check([...asArray(i.cidrBlocks), ...asArray(i.ipv6CidrBlocks)], i.fromPort, i.toPort);
    }
    if (type === "aws:ec2/securityGroupRule:SecurityGroupRule" && p.type === "ingress") {
      check([...asArray(p.cidrBlocks), ...asArray(p.ipv6CidrBlocks)], p.fromPort, p.toPort);
    }
  },
);

export const noWildcardDataAccess = rule(
  "iam-no-wildcard-s3-or-secrets",
  "No IAM statement grants S3 or Secrets Manager actions on every resource (*).",
  (type, p, report) => {
    const doc =
      type === "aws:iam/rolePolicy:RolePolicy" ||
      type === "aws:iam/policy:Policy" ||
      type === "aws:iam/userPolicy:UserPolicy"
        ? parseJson(p.policy)
        : undefined;
    for (const st of asArray(doc?.Statement) as Props[]) {
      if (st.Effect !== "Allow") continue;
      const actions = asArray(st.Action).map(String);
      const data = actions.filter((a) => a === "*" || /^(s3|secretsmanager):/i.test(a));
      if (data.length > 0 && asArray(st.Resource).map(String).includes("*")) {
        report(`statement ${st.Sid ?? ""} allows ${data.join(", ")} on *`);
      }
    }
  },
);

const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|ACCESS_KEY)/i;
const SECRET_VALUE = [
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /\beyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}/, // a JWT
  /:\/\/[^/:@\s]+:[^@\s]+@/, // credentials in a URL
  /\bAKIA[0-9A-Z]{16}\b/, // an AWS access key id
];
function looksSecret(value: string): boolean {
  if (SECRET_VALUE.some((r) => r.test(value))) return true;
  // A base64 value may wrap a whole config file: look inside.
  if (/^[A-Za-z0-9+/]{40,}={0,2}$/.test(value)) {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    return (
      SECRET_VALUE.some((r) => r.test(decoded)) || /token-(rs256-secret|hs256-secret)-base64/.test(decoded)
    );
  }
  return false;
}

export const noPlaintextSecretsInTasks = rule(
  "ecs-no-plaintext-secrets",
  "ECS task definitions carry secrets only through `secrets` (Secrets Manager), never in `environment`.",
  (type, p, report) => {
    if (type !== "aws:ecs/taskDefinition:TaskDefinition") return;
    for (const c of asArray(parseJson(p.containerDefinitions)) as Props[]) {
      for (const e of asArray(c.environment) as Props[]) {
        if (SECRET_NAME.test(String(e.name)))
          report(`container ${c.name}: ${e.name} looks like a secret; pass it through secrets`);
        else if (typeof e.value === "string" && looksSecret(e.value))
          report(`container ${c.name}: the value of ${e.name} contains a secret`);
      }
    }
  },
);

export const REQUIRED_TAGS = ["attic-infra:stack", "managed-by"];
export const requiredTags = rule(
  "required-tags",
  `The AWS provider tags every resource with ${REQUIRED_TAGS.join(" and ")} (defaultTags).`,
  (type, p, report) => {
    if (type !== "pulumi:providers:aws") return;
    const tags = parseJson(p.defaultTags)?.tags ?? {};
    for (const t of REQUIRED_TAGS) if (!tags[t]) report(`defaultTags lacks ${t}`);
  },
);

export const tlsListeners = rule(
  "alb-tls-1-2-or-newer",
  "HTTPS listeners use a TLS 1.2+ security policy.",
  (type, p, report) => {
    if (type !== "aws:lb/listener:Listener" || p.protocol !== "HTTPS") return;
    if (!/^ELBSecurityPolicy-(TLS13-1-[23]-|TLS-1-2-|FS-1-2-)/.test(String(p.sslPolicy))) {
      report(`sslPolicy ${p.sslPolicy} allows TLS older than 1.2`);
    }
  },
);

export const pinnedHostKeys = rule(
  "ssh-host-key-pinned",
  "Every SSH connection (office host, switch) checks the host's key.",
  (type, p, report) => {
    if (type === "command:remote:Command") {
      const connection = parseJson(p.connection);
      if (connection && typeof connection === "object" && !connection.hostKey)
        report("connection.hostKey is not set");
    }
    if (type === "command:local:Command") {
      const env = parseJson(p.environment);
      if (env && typeof env === "object" && "ROUTEROS_HOST" in env && !env.ROUTEROS_HOST_KEY) {
        report("ROUTEROS_HOST_KEY is empty: the switch's key is not checked");
      }
      if (env && typeof env === "object" && "NIXOS_HOST" in env && !env.NIXOS_HOST_KEY) {
        report("NIXOS_HOST_KEY is empty: the NixOS host's key is not checked");
      }
    }
  },
);

export const policies: ResourceValidationPolicy[] = [
  noPublicS3,
  encryptionAtRest,
  deliverableAlarms,
  databaseSafety,
  noOpenIngress,
  noWildcardDataAccess,
  noPlaintextSecretsInTasks,
  requiredTags,
  tlsListeners,
  pinnedHostKeys,
];
