/**
 * HTTPS in front of the api-server tasks: a dedicated internet-facing ALB (HTTPS listener, HTTP →
 * HTTPS redirect, access logs), or a host-header rule on an existing shared ALB's HTTPS listener.
 *
 * The idle timeout defaults to an hour: one NAR upload is one streamed PUT with no Content-Length,
 * and the ALB's default 60 s cuts large uploads (attic #170). For the same reason a stopping task is
 * drained for `service.deregistrationDelaySeconds` (default 300 s), not the 30 s it used to be.
 *
 * On a shared listener the site's certificate is attached with a ListenerCertificate: adding a
 * certificate the listener already has is a no-op in AWS (AddListenerCertificates), and a
 * certificate from config is retained on delete — it may serve another application on that listener.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig } from "../../config/schema";
import { ATTIC_PORT } from "./securityGroups";
import { denyInsecureTransport, makePrivate } from "./storage";

export interface LoadBalancerArgs {
  loadBalancer: AwsConfig["loadBalancer"];
  hostname: string;
  vpcId: pulumi.Input<string>;
  publicSubnetIds: pulumi.Input<string[]>;
  securityGroupId: pulumi.Input<string>;
  certificateArn: pulumi.Input<string>;
  /** True when the program issued the certificate (it goes when the stack goes). */
  ownCertificate: boolean;
  /** Target group deregistration delay (drain) in seconds. */
  deregistrationDelaySeconds: number;
}

/** `arn:…:listener/app/<name>/<id>/<listener id>` → `arn:…:loadbalancer/app/<name>/<id>` */
export function loadBalancerArnOfListener(listenerArn: string): string {
  const m = /^(arn:[^:]+:elasticloadbalancing:[^:]+:\d+:)listener\/(app\/[^/]+\/[^/]+)\/[^/]+$/.exec(
    listenerArn,
  );
  if (!m)
    throw new Error(
      `attic-infra:aws.loadBalancer.existing.listenerArn: ${listenerArn} is not an ALB listener ARN`,
    );
  return `${m[1]}loadbalancer/${m[2]}`;
}

export class LoadBalancer extends pulumi.ComponentResource {
  public readonly targetGroupArn: pulumi.Output<string>;
  /** `app/<name>/<id>`: CloudWatch's LoadBalancer dimension. */
  public readonly arnSuffix: pulumi.Output<string>;
  /** `targetgroup/<name>/<id>`: CloudWatch's TargetGroup dimension. */
  public readonly targetGroupArnSuffix: pulumi.Output<string>;
  public readonly dnsName: pulumi.Output<string>;
  public readonly zoneId: pulumi.Output<string>;
  /** What must exist before ECS can register targets: the listener (rule). */
  public readonly ready: pulumi.Resource[];
  public readonly accessLogsBucket?: pulumi.Output<string>;

  constructor(name: string, args: LoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:LoadBalancer", name, {}, opts);
    const child = { parent: this };
    const lb = args.loadBalancer;

    const targetGroup = new aws.lb.TargetGroup(
      `${name}-attic`,
      {
        vpcId: args.vpcId,
        port: ATTIC_PORT,
        protocol: "HTTP",
        targetType: "ip",
        deregistrationDelay: args.deregistrationDelaySeconds,
        // `GET /` answers 200 without auth or database; there is no /v1/healthz.
        healthCheck: {
          path: "/",
          matcher: "200",
          protocol: "HTTP",
          port: "traffic-port",
          interval: 15,
          timeout: 5,
          healthyThreshold: 2,
          unhealthyThreshold: 3,
        },
      },
      child,
    );
    this.targetGroupArn = targetGroup.arn;
    this.targetGroupArnSuffix = targetGroup.arnSuffix;

    if (lb.mode === "existing") {
      const lbArn = loadBalancerArnOfListener(lb.listenerArn);
      const existing = aws.lb.getLoadBalancerOutput({ arn: lbArn }, child);
      const rule = new aws.lb.ListenerRule(
        `${name}-attic`,
        {
          listenerArn: lb.listenerArn,
          priority: lb.rulePriority,
          conditions: [{ hostHeader: { values: [args.hostname] } }],
          actions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
        },
        child,
      );
      this.ready = [
        rule,
        new aws.lb.ListenerCertificate(
          `${name}-attic`,
          { listenerArn: lb.listenerArn, certificateArn: args.certificateArn },
          { ...child, retainOnDelete: !args.ownCertificate },
        ),
      ];
      this.arnSuffix = pulumi.output(lbArn.replace(/^.*:loadbalancer\//, ""));
      this.dnsName = existing.dnsName;
      this.zoneId = existing.zoneId;
      this.registerOutputs({ targetGroupArn: this.targetGroupArn });
      return;
    }

    let accessLogs: aws.types.input.lb.LoadBalancerAccessLogs | undefined;
    // The ALB checks that it may write to the log bucket when logging is turned on.
    const logsReady: pulumi.Resource[] = [];
    if (lb.accessLogs) {
      const logs = accessLogBucket(`${name}-logs`, this);
      this.accessLogsBucket = logs.bucket.bucket;
      logsReady.push(logs.policy);
      accessLogs = { bucket: logs.bucket.bucket, enabled: true, prefix: "alb" };
    }
    const alb = new aws.lb.LoadBalancer(
      `${name}-alb`,
      {
        loadBalancerType: "application",
        internal: false,
        subnets: args.publicSubnetIds,
        securityGroups: [args.securityGroupId],
        idleTimeout: lb.idleTimeoutSeconds,
        dropInvalidHeaderFields: true,
        enableDeletionProtection: false,
        ...(accessLogs ? { accessLogs } : {}),
      },
      { ...child, dependsOn: logsReady },
    );
    const https = new aws.lb.Listener(
      `${name}-https`,
      {
        loadBalancerArn: alb.arn,
        port: 443,
        protocol: "HTTPS",
        sslPolicy: lb.sslPolicy,
        certificateArn: args.certificateArn,
        defaultActions: [{ type: "forward", targetGroupArn: targetGroup.arn }],
      },
      child,
    );
    new aws.lb.Listener(
      `${name}-http`,
      {
        loadBalancerArn: alb.arn,
        port: 80,
        protocol: "HTTP",
        defaultActions: [
          { type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } },
        ],
      },
      child,
    );
    this.ready = [https];
    this.arnSuffix = alb.arnSuffix;
    this.dnsName = alb.dnsName;
    this.zoneId = alb.zoneId;
    this.registerOutputs({ targetGroupArn: this.targetGroupArn, dnsName: this.dnsName });
  }
}

/** A private, SSE-S3 bucket the ALB may write its access logs to; logs expire after 90 days. */
function accessLogBucket(
  name: string,
  parent: pulumi.Resource,
): { bucket: aws.s3.Bucket; policy: aws.s3.BucketPolicy } {
  const child = { parent };
  // Logs are not the cache: the bucket may be emptied on delete.
  const bucket = new aws.s3.Bucket(name, { forceDestroy: true }, child);
  makePrivate(name, bucket.id, parent);
  // ALB access logs support SSE-S3 only.
  new aws.s3.BucketServerSideEncryptionConfiguration(
    name,
    { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }] },
    child,
  );
  new aws.s3.BucketLifecycleConfiguration(
    name,
    {
      bucket: bucket.id,
      rules: [{ id: "expire-access-logs", status: "Enabled", filter: {}, expiration: { days: 90 } }],
    },
    child,
  );
  const elbAccount = aws.elb.getServiceAccountOutput({}, child);
  const policy = new aws.s3.BucketPolicy(
    name,
    {
      bucket: bucket.id,
      policy: pulumi.jsonStringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "AlbLogDeliveryAccount",
            Effect: "Allow",
            Principal: { AWS: elbAccount.arn },
            Action: "s3:PutObject",
            Resource: pulumi.interpolate`${bucket.arn}/alb/AWSLogs/*`,
          },
          {
            Sid: "AlbLogDeliveryService",
            Effect: "Allow",
            Principal: { Service: "logdelivery.elasticloadbalancing.amazonaws.com" },
            Action: "s3:PutObject",
            Resource: pulumi.interpolate`${bucket.arn}/alb/AWSLogs/*`,
          },
          denyInsecureTransport(bucket.arn),
        ],
      }),
    },
    child,
  );
  return { bucket, policy };
}
