/**
 * Who may talk to whom, in one place: the internet (allowedCidrs) → ALB on 80/443; ALB → tasks on
 * 8080; tasks → database on 5432. One rule resource per source, so each is visible in a diff.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig } from "../../config/schema";

export const ATTIC_PORT = 8080;

export interface SecurityGroupsArgs {
  vpcId: pulumi.Input<string>;
  loadBalancer: AwsConfig["loadBalancer"];
  database: AwsConfig["database"];
}

export class SecurityGroups extends pulumi.ComponentResource {
  /** The load balancer's group: ours, or the shared ALB's from config. */
  public readonly albId: pulumi.Output<string>;
  public readonly tasksId: pulumi.Output<string>;
  /** The dedicated database's group (undefined with an existing database). */
  public readonly databaseId?: pulumi.Output<string>;

  constructor(name: string, args: SecurityGroupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:SecurityGroups", name, {}, opts);
    const child = { parent: this };
    const group = (id: string, description: string) =>
      new aws.ec2.SecurityGroup(
        `${name}-${id}`,
        { vpcId: args.vpcId, description, tags: { Name: `${name}-${id}` } },
        child,
      );
    const ingress = (id: string, rule: aws.vpc.SecurityGroupIngressRuleArgs) =>
      new aws.vpc.SecurityGroupIngressRule(`${name}-${id}`, rule, child);
    const egress = (id: string, rule: aws.vpc.SecurityGroupEgressRuleArgs) =>
      new aws.vpc.SecurityGroupEgressRule(`${name}-${id}`, rule, child);

    const tasks = group("tasks", "atticd tasks: reachable from the load balancer only");
    this.tasksId = tasks.id;

    const lb = args.loadBalancer;
    if (lb.mode === "dedicated") {
      const alb = group("alb", "attic load balancer: HTTPS (and HTTP redirect) from allowedCidrs");
      this.albId = alb.id;
      lb.allowedCidrs.forEach((cidr, i) => {
        for (const port of [443, 80]) {
          ingress(`alb-from-cidr${i}-${port}`, {
            securityGroupId: alb.id,
            cidrIpv4: cidr,
            ipProtocol: "tcp",
            fromPort: port,
            toPort: port,
            description: `HTTP${port === 443 ? "S" : " (redirect)"} from ${cidr}`,
          });
        }
      });
    } else {
      this.albId = pulumi.output(lb.securityGroupId);
    }
    egress("alb-to-tasks", {
      securityGroupId: this.albId,
      referencedSecurityGroupId: tasks.id,
      ipProtocol: "tcp",
      fromPort: ATTIC_PORT,
      toPort: ATTIC_PORT,
      description: "to the atticd tasks",
    });
    ingress("tasks-from-alb", {
      securityGroupId: tasks.id,
      referencedSecurityGroupId: this.albId,
      ipProtocol: "tcp",
      fromPort: ATTIC_PORT,
      toPort: ATTIC_PORT,
      description: "from the load balancer",
    });
    // HTTPS out: the image registry, S3, Secrets Manager, CloudWatch Logs.
    egress("tasks-https", {
      securityGroupId: tasks.id,
      cidrIpv4: "0.0.0.0/0",
      ipProtocol: "tcp",
      fromPort: 443,
      toPort: 443,
      description: "HTTPS: image pull, S3, Secrets Manager, logs",
    });

    const db = args.database;
    if (db.mode === "dedicated") {
      const database = group("database", "attic metadata database: PostgreSQL from the atticd tasks only");
      this.databaseId = database.id;
      ingress("database-from-tasks", {
        securityGroupId: database.id,
        referencedSecurityGroupId: tasks.id,
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
        description: "PostgreSQL from the atticd tasks",
      });
      egress("tasks-to-database", {
        securityGroupId: tasks.id,
        referencedSecurityGroupId: database.id,
        ipProtocol: "tcp",
        fromPort: 5432,
        toPort: 5432,
        description: "PostgreSQL",
      });
    } else {
      if (db.securityGroupId) {
        ingress("database-from-tasks", {
          securityGroupId: db.securityGroupId,
          referencedSecurityGroupId: tasks.id,
          ipProtocol: "tcp",
          fromPort: db.port,
          toPort: db.port,
          description: "PostgreSQL from the attic-infra tasks",
        });
      }
      // To the database's own group when config names it; otherwise its address is not known here
      // (a host name may resolve anywhere) and its own security group does the limiting.
      egress("tasks-to-database", {
        securityGroupId: tasks.id,
        ...(db.securityGroupId
          ? { referencedSecurityGroupId: db.securityGroupId }
          : { cidrIpv4: "0.0.0.0/0" }),
        ipProtocol: "tcp",
        fromPort: db.port,
        toPort: db.port,
        description: "PostgreSQL (existing database)",
      });
    }
    this.registerOutputs({ tasksId: this.tasksId });
  }
}
