/**
 * The AWS site: atticd on ECS Fargate behind an ALB, chunks in S3, metadata in RDS PostgreSQL,
 * the database password in Secrets Manager, alarms on SNS. Each concern is its own component.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type * as tls from "@pulumi/tls";
import type { AtticConfig, AwsConfig } from "../../config/schema";
import { recordArtifact } from "../artifacts";
import { AtticServer } from "../attic/server";
import { atticSettings, renderToml } from "../attic/settings";
import { type AwsOutputs, cacheSiteOutputs, type Outputs } from "../outputs";
import { SiteCertificate } from "./certificate";
import { Database } from "./database";
import { LoadBalancer } from "./loadBalancer";
import { Monitoring } from "./monitoring";
import { Network } from "./network";
import { SecurityGroups } from "./securityGroups";
import { Service } from "./service";
import { ChunkStorage } from "./storage";

export interface AwsSiteArgs {
  attic: AtticConfig;
  aws: AwsConfig;
  signingKey: tls.PrivateKey;
}

export class AwsSite extends pulumi.ComponentResource {
  /** This site's stack outputs (components/outputs.ts): the ECS, RDS and alarm names the runbooks use, too. */
  public readonly outputs: Outputs<AwsOutputs>;

  constructor(name: string, args: AwsSiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:Site", name, {}, opts);
    const { attic, aws: site } = args;
    const child = { parent: this };

    const network = new Network(`${name}-network`, { network: site.network }, child);
    const groups = new SecurityGroups(
      `${name}-sg`,
      { vpcId: network.vpcId, loadBalancer: site.loadBalancer, database: site.database },
      child,
    );
    const storage = new ChunkStorage(`${name}-storage`, { storage: site.storage }, child);
    const database = new Database(
      `${name}-database`,
      {
        database: site.database,
        privateSubnetIds: network.privateSubnetIds,
        ...(groups.databaseId ? { securityGroupId: groups.databaseId } : {}),
      },
      child,
    );
    const certificate = new SiteCertificate(
      `${name}-tls`,
      {
        hostname: site.hostname,
        ...(site.dns ? { dns: site.dns } : {}),
        ...(site.certificateArn ? { certificateArn: site.certificateArn } : {}),
      },
      child,
    );
    const lb = new LoadBalancer(
      `${name}-lb`,
      {
        loadBalancer: site.loadBalancer,
        hostname: site.hostname,
        vpcId: network.vpcId,
        publicSubnetIds: network.publicSubnetIds,
        securityGroupId: groups.albId,
        certificateArn: certificate.certificateArn,
        ownCertificate: site.dns !== undefined,
        deregistrationDelaySeconds: site.service.deregistrationDelaySeconds,
      },
      child,
    );
    const alias = certificate.aliasTo({ dnsName: lb.dnsName, zoneId: lb.zoneId });

    // One settings object for both roles; the role is atticd's --mode flag.
    const region = aws.getRegionOutput({}, child).region;
    const toml = pulumi
      .all([
        database.user,
        database.host,
        database.port,
        database.name,
        storage.bucketName,
        region,
        args.signingKey.publicKeyPem,
      ])
      .apply(([user, host, port, dbName, bucket, r, publicKeyPem]) =>
        renderToml(
          atticSettings(attic, {
            kind: "aws",
            hostname: site.hostname,
            database: { user, host, port, name: dbName },
            bucket: { region: r, bucket },
            tokenPublicKeyPem: publicKeyPem,
          }),
        ),
      );
    recordArtifact("aws/atticd-api-server.toml", toml);
    recordArtifact("aws/atticd-garbage-collector.toml", toml);

    const service = new Service(
      `${name}-ecs`,
      {
        attic,
        aws: site,
        configToml: toml,
        passwordValueFrom: database.passwordValueFrom,
        passwordSecretArn: database.passwordSecretArn,
        storageStatements: storage.grantReadWrite(),
        subnetIds: network.taskSubnetIds,
        assignPublicIp: network.assignPublicIp,
        securityGroupId: groups.tasksId,
        targetGroupArn: lb.targetGroupArn,
        requestCountLabel: pulumi.interpolate`${lb.arnSuffix}/${lb.targetGroupArnSuffix}`,
        loadBalancerReady: lb.ready,
      },
      child,
    );
    const monitoring = new Monitoring(
      `${name}-monitoring`,
      {
        aws: site,
        loadBalancerArnSuffix: lb.arnSuffix,
        targetGroupArnSuffix: lb.targetGroupArnSuffix,
        ...(database.instanceIdentifier ? { databaseInstanceId: database.instanceIdentifier } : {}),
        bucketName: storage.bucketName,
        clusterArn: service.clusterArn,
        gcFamily: service.gcFamily,
        ...(service.gcSchedule ? { gcScheduleGroup: service.gcSchedule.group } : {}),
        serviceArns: service.serviceArns,
      },
      child,
    );

    const server = new AtticServer(
      `${name}-attic`,
      {
        attic,
        apiEndpoint: `https://${site.hostname}/`,
        signingKey: args.signingKey,
        dependsOn: [service.apiService, ...lb.ready, ...(alias ? [alias] : [])],
      },
      child,
    );

    this.outputs = {
      ...cacheSiteOutputs(server),
      bucketName: storage.bucketName,
      databaseEndpoint: pulumi.interpolate`${database.host}:${database.port}`,
      ...(database.restoreNames ? { database: database.restoreNames } : {}),
      // The ECS cluster and the api service, for `aws ecs update-service`.
      ecs: pulumi.output({
        cluster: service.clusterName,
        apiService: service.serviceName,
        ...(service.gcServiceName ? { gcService: service.gcServiceName } : {}),
      }),
      logGroup: service.logGroupName,
      gcRunTask: service.gcRunTask,
      ...(service.gcSchedule ? { gcSchedule: service.gcSchedule } : {}),
      alarmTopicArn: monitoring.topicArn,
      ...(monitoring.emailConfirmation
        ? { alarmEmailConfirmation: pulumi.output(monitoring.emailConfirmation) }
        : {}),
    };
    this.registerOutputs({ endpoint: server.endpoint, bucketName: storage.bucketName });
  }
}
