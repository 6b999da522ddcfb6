/**
 * atticd's metadata database: a dedicated RDS PostgreSQL instance, or an existing PostgreSQL from
 * config. Either way the tasks get the connection facts and the password's secret; the password
 * never appears in a URL, a TOML file or a task definition (ECS injects it as PGPASSWORD).
 *
 * The master password is ours (random.RandomPassword in a Secrets Manager secret), not RDS-managed:
 * managed passwords rotate, and ECS reads secrets only when a task starts.
 *
 * A major upgrade (`engineVersion` 16 → 17) is one `pulumi up`. The parameter group's family
 * (`postgres<major>`) is immutable, so Pulumi replaces the group — create-before-delete, and its
 * physical name is auto-generated, so old and new coexist. The instance update then switches engine
 * version and parameter group in one ModifyDBInstance, applied immediately
 * (`allowMajorVersionUpgrade`), and only after that does Pulumi delete the old group, which no
 * instance uses any more. With `applyImmediately: false` the modification would wait for the
 * maintenance window and the old group's deletion would fail while the instance still uses it.
 * Consequence: every change to the instance takes effect at `pulumi up`, not in the maintenance
 * window — choose when to run it.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { AwsConfig } from "../../config/schema";
import { awsName, NAME_RULES } from "./names";

export const DATABASE_NAME = "attic";
export const DATABASE_USER = "attic";

export interface DatabaseArgs {
  database: AwsConfig["database"];
  privateSubnetIds: pulumi.Input<string[]>;
  /** The dedicated database's security group. */
  securityGroupId?: pulumi.Input<string>;
}

export class Database extends pulumi.ComponentResource {
  public readonly host: pulumi.Output<string>;
  public readonly port: pulumi.Output<number>;
  public readonly name: pulumi.Output<string>;
  public readonly user: pulumi.Output<string>;
  /** The password's secret ARN and, for JSON secrets, the key: what ECS `secrets` valueFrom needs. */
  public readonly passwordSecretArn: pulumi.Output<string>;
  public readonly passwordValueFrom: pulumi.Output<string>;
  /** The RDS instance identifier (for alarms), when the program created it. */
  public readonly instanceIdentifier?: pulumi.Output<string>;
  /** What a restore from a snapshot needs (docs/runbooks.md), when the program created the instance. */
  public readonly restoreNames?: pulumi.Output<{
    identifier: string;
    subnetGroup: string;
    parameterGroup: string;
    securityGroupIds: string[];
  }>;

  constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:Database", name, {}, opts);
    const d = args.database;
    const child = { parent: this };

    if (d.mode === "existing") {
      this.host = pulumi.output(d.host);
      this.port = pulumi.output(d.port);
      this.name = pulumi.output(d.name);
      this.user = pulumi.output(d.user);
      this.passwordSecretArn = pulumi.output(d.passwordSecretArn);
      this.passwordValueFrom = pulumi.output(
        d.passwordSecretJsonKey ? `${d.passwordSecretArn}:${d.passwordSecretJsonKey}::` : d.passwordSecretArn,
      );
      this.registerOutputs({ host: this.host });
      return;
    }

    // Letters and digits only: the password travels through environment variables and psql prompts.
    const password = new random.RandomPassword(`${name}-password`, { length: 40, special: false }, child);
    // Retained with the instance it opens: after a `pulumi destroy` the retained database (and any
    // snapshot of it) still needs this password, which exists nowhere else.
    const retained = { ...child, retainOnDelete: true };
    const secret = new aws.secretsmanager.Secret(
      `${name}-password`,
      {
        description: "attic metadata database password (PGPASSWORD for atticd)",
        recoveryWindowInDays: 7,
      },
      retained,
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-password`,
      { secretId: secret.id, secretString: password.result },
      retained,
    );
    const subnets = new aws.rds.SubnetGroup(
      `${name}-subnets`,
      { subnetIds: args.privateSubnetIds, description: "attic database: private subnets only" },
      child,
    );
    const parameters = new aws.rds.ParameterGroup(
      `${name}-params`,
      {
        family: `postgres${d.engineVersion}`,
        description: "attic: TLS only",
        parameters: [{ name: "rds.force_ssl", value: "1" }],
      },
      child,
    );
    const stack = pulumi.getStack();
    const instance = new aws.rds.Instance(
      `${name}-postgres`,
      {
        engine: "postgres",
        engineVersion: d.engineVersion,
        autoMinorVersionUpgrade: true,
        instanceClass: d.instanceClass,
        storageType: "gp3",
        allocatedStorage: d.storageGb,
        maxAllocatedStorage: d.maxStorageGb,
        storageEncrypted: true,
        dbName: DATABASE_NAME,
        username: DATABASE_USER,
        password: password.result,
        port: 5432,
        dbSubnetGroupName: subnets.name,
        vpcSecurityGroupIds: args.securityGroupId ? [args.securityGroupId] : [],
        parameterGroupName: parameters.name,
        publiclyAccessible: false,
        multiAz: d.multiAz,
        backupRetentionPeriod: d.backupRetentionDays,
        deletionProtection: true,
        skipFinalSnapshot: false,
        finalSnapshotIdentifier: awsName(`attic-infra-${stack}-final`, NAME_RULES.rdsSnapshot),
        copyTagsToSnapshot: true,
        performanceInsightsEnabled: d.performanceInsights,
        ...(d.performanceInsights ? { performanceInsightsRetentionPeriod: 7 } : {}),
        allowMajorVersionUpgrade: true,
        applyImmediately: true,
      },
      // Storage autoscaling raises allocatedStorage behind Pulumi's back; storageGb is the initial size.
      { ...child, protect: true, retainOnDelete: true, ignoreChanges: ["allocatedStorage"] },
    );
    this.host = instance.address;
    this.port = instance.port;
    this.name = pulumi.output(DATABASE_NAME);
    this.user = pulumi.output(DATABASE_USER);
    this.passwordSecretArn = secret.arn;
    this.passwordValueFrom = secret.arn;
    this.instanceIdentifier = instance.identifier;
    this.restoreNames = pulumi.output({
      identifier: instance.identifier,
      subnetGroup: subnets.name,
      parameterGroup: parameters.name,
      securityGroupIds: instance.vpcSecurityGroupIds,
    });
    this.registerOutputs({ host: this.host });
  }
}
