/**
 * Alarms that page someone before users notice, on one SNS topic, and a dashboard of the same
 * metrics: no healthy api task, unhealthy targets, 5XX answers, database CPU and free storage, and
 * the chunk bucket outgrowing its budget.
 *
 * Every alarm uses a free metric scoped to this service: `AWS/ApplicationELB` by target group (on a
 * shared ALB the load balancer's own metrics count every application), `AWS/RDS`, `AWS/S3`. None
 * depends on Container Insights, which may be off (it is, by default) or belong to another team's
 * cluster.
 *
 * The topic is NOT encrypted, by choice: CloudWatch cannot publish to a topic encrypted with the
 * AWS-managed key `alias/aws/sns` (its key policy cannot grant cloudwatch.amazonaws.com), so such a
 * topic silently drops every alarm. A customer-managed key would work (≈ $1/month) but an alarm
 * message holds nothing a key protects: alarm names, metric values, thresholds.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig } from "../../config/schema";
import { awsName, NAME_RULES } from "./names";

export interface MonitoringArgs {
  aws: AwsConfig;
  loadBalancerArnSuffix: pulumi.Input<string>;
  targetGroupArnSuffix: pulumi.Input<string>;
  /** The dedicated RDS instance, if any. */
  databaseInstanceId?: pulumi.Input<string>;
  bucketName: pulumi.Input<string>;
}

const GIB = 1024 ** 3;

/** The storage classes a chunk can be in: S3 reports BucketSizeBytes per class only. */
const BUCKET_STORAGE_TYPES = [
  "StandardStorage",
  "IntelligentTieringFAStorage",
  "IntelligentTieringIAStorage",
  "IntelligentTieringAIAStorage",
];

export class Monitoring extends pulumi.ComponentResource {
  public readonly topicArn: pulumi.Output<string>;
  public readonly alarmNames: pulumi.Output<string[]>;
  /** What the person at `alarms.email` must do before any alarm reaches them; undefined without one. */
  public readonly emailConfirmation?: string;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:Monitoring", name, {}, opts);
    const child = { parent: this };
    const a = args.aws;

    const topic = new aws.sns.Topic(`${name}-alarms`, {}, child);
    this.topicArn = topic.arn;
    if (a.alarms.email) {
      new aws.sns.TopicSubscription(
        `${name}-alarms-email`,
        { topic: topic.arn, protocol: "email", endpoint: a.alarms.email },
        child,
      );
      // An email subscription stays PendingConfirmation, delivering nothing, until its link is clicked.
      this.emailConfirmation = `AWS has sent a confirmation email to ${a.alarms.email}: click its link, or no alarm is delivered (the subscription stays PendingConfirmation)`;
    }
    const actions = { alarmActions: [topic.arn], okActions: [topic.arn] };
    const alb = { LoadBalancer: args.loadBalancerArnSuffix, TargetGroup: args.targetGroupArnSuffix };
    // The load balancer's own 5XX count covers every target group behind it: ours only on our ALB.
    const dedicatedAlb = a.loadBalancer.mode === "dedicated";
    const alarms: aws.cloudwatch.MetricAlarm[] = [];
    const alarm = (id: string, spec: aws.cloudwatch.MetricAlarmArgs) =>
      alarms.push(new aws.cloudwatch.MetricAlarm(`${name}-${id}`, { ...actions, ...spec }, child));

    // The logical name predates the metric: renaming it would replace the alarm for nothing.
    alarm("api-no-running-task", {
      alarmDescription: "No atticd api task passes the load balancer's health check: the cache is down.",
      namespace: "AWS/ApplicationELB",
      metricName: "HealthyHostCount",
      dimensions: alb,
      statistic: "Minimum",
      period: 60,
      evaluationPeriods: 2,
      comparisonOperator: "LessThanThreshold",
      threshold: 1,
      treatMissingData: "breaching",
    });
    alarm("alb-unhealthy-targets", {
      alarmDescription: "An atticd target has failed the load balancer's health check (GET /) for 5 minutes.",
      namespace: "AWS/ApplicationELB",
      metricName: "UnHealthyHostCount",
      dimensions: alb,
      statistic: "Maximum",
      period: 60,
      evaluationPeriods: 5,
      comparisonOperator: "GreaterThanThreshold",
      threshold: 0,
      treatMissingData: "notBreaching",
    });
    alarm("http-5xx", {
      alarmDescription: dedicatedAlb
        ? "More than 10 5XX answers a minute (load balancer + atticd)."
        : "More than 10 5XX answers a minute from atticd (this target group on the shared load balancer).",
      comparisonOperator: "GreaterThanThreshold",
      threshold: 10,
      evaluationPeriods: 1,
      treatMissingData: "notBreaching",
      metricQueries: [
        {
          id: "total",
          expression: dedicatedAlb ? "FILL(elb, 0) + FILL(target, 0)" : "FILL(target, 0)",
          label: "5XX per minute",
          returnData: true,
        },
        ...(dedicatedAlb
          ? [
              {
                id: "elb",
                metric: {
                  namespace: "AWS/ApplicationELB",
                  metricName: "HTTPCode_ELB_5XX_Count",
                  dimensions: { LoadBalancer: args.loadBalancerArnSuffix },
                  stat: "Sum",
                  period: 60,
                },
              },
            ]
          : []),
        {
          id: "target",
          metric: {
            namespace: "AWS/ApplicationELB",
            metricName: "HTTPCode_Target_5XX_Count",
            dimensions: alb,
            stat: "Sum",
            period: 60,
          },
        },
      ],
    });
    if (args.databaseInstanceId) {
      const db = { DBInstanceIdentifier: args.databaseInstanceId };
      alarm("rds-cpu", {
        alarmDescription: "Database CPU above 80 % for 10 minutes.",
        namespace: "AWS/RDS",
        metricName: "CPUUtilization",
        dimensions: db,
        statistic: "Average",
        period: 300,
        evaluationPeriods: 2,
        comparisonOperator: "GreaterThanThreshold",
        threshold: 80,
      });
      alarm("rds-free-storage", {
        alarmDescription: "Less than 2 GiB of database storage left (autoscaling may be at its maximum).",
        namespace: "AWS/RDS",
        metricName: "FreeStorageSpace",
        dimensions: db,
        statistic: "Minimum",
        period: 300,
        evaluationPeriods: 1,
        comparisonOperator: "LessThanThreshold",
        threshold: 2 * GIB,
      });
    }
    alarm("bucket-size", {
      alarmDescription: `The chunk bucket holds more than ${a.storage.sizeAlarmGb} GiB.`,
      comparisonOperator: "GreaterThanThreshold",
      threshold: a.storage.sizeAlarmGb * GIB,
      evaluationPeriods: 1,
      treatMissingData: "notBreaching",
      metricQueries: [
        {
          id: "total",
          expression: `SUM([${BUCKET_STORAGE_TYPES.map((_, i) => `FILL(s${i}, 0)`).join(", ")}])`,
          label: "bucket size (bytes)",
          returnData: true,
        },
        ...BUCKET_STORAGE_TYPES.map((storageType, i) => ({
          id: `s${i}`,
          metric: {
            namespace: "AWS/S3",
            metricName: "BucketSizeBytes",
            dimensions: { BucketName: args.bucketName, StorageType: storageType },
            stat: "Average",
            period: 86400,
          },
        })),
      ],
    });
    this.alarmNames = pulumi.all(alarms.map((x) => x.name));

    const region = aws.getRegionOutput({}, child).region;
    const widget = (title: string, metrics: unknown[][], y: number, x: number) => ({
      type: "metric",
      x,
      y,
      width: 12,
      height: 6,
      properties: { title, region, metrics, stat: "Sum", period: 60, view: "timeSeries" },
    });
    new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName: awsName(`attic-infra-${pulumi.getStack()}`, NAME_RULES.dashboard),
        dashboardBody: pulumi.jsonStringify({
          widgets: [
            widget(
              "healthy api tasks",
              [
                [
                  "AWS/ApplicationELB",
                  "HealthyHostCount",
                  "LoadBalancer",
                  args.loadBalancerArnSuffix,
                  "TargetGroup",
                  args.targetGroupArnSuffix,
                  { stat: "Minimum" },
                ],
              ],
              0,
              0,
            ),
            widget(
              "requests and 5XX",
              [
                [
                  "AWS/ApplicationELB",
                  "RequestCount",
                  "LoadBalancer",
                  args.loadBalancerArnSuffix,
                  "TargetGroup",
                  args.targetGroupArnSuffix,
                ],
                ...(dedicatedAlb
                  ? [
                      [
                        "AWS/ApplicationELB",
                        "HTTPCode_ELB_5XX_Count",
                        "LoadBalancer",
                        args.loadBalancerArnSuffix,
                      ],
                    ]
                  : []),
                [
                  "AWS/ApplicationELB",
                  "HTTPCode_Target_5XX_Count",
                  "LoadBalancer",
                  args.loadBalancerArnSuffix,
                  "TargetGroup",
                  args.targetGroupArnSuffix,
                ],
                [
                  "AWS/ApplicationELB",
                  "UnHealthyHostCount",
                  "LoadBalancer",
                  args.loadBalancerArnSuffix,
                  "TargetGroup",
                  args.targetGroupArnSuffix,
                  { stat: "Maximum" },
                ],
              ],
              0,
              12,
            ),
            ...(args.databaseInstanceId
              ? [
                  widget(
                    "database",
                    [
                      [
                        "AWS/RDS",
                        "CPUUtilization",
                        "DBInstanceIdentifier",
                        args.databaseInstanceId,
                        { stat: "Average" },
                      ],
                      [
                        "AWS/RDS",
                        "FreeStorageSpace",
                        "DBInstanceIdentifier",
                        args.databaseInstanceId,
                        { stat: "Minimum", yAxis: "right" },
                      ],
                    ],
                    6,
                    0,
                  ),
                ]
              : []),
            widget(
              "chunk bucket size",
              BUCKET_STORAGE_TYPES.map((t) => [
                "AWS/S3",
                "BucketSizeBytes",
                "BucketName",
                args.bucketName,
                "StorageType",
                t,
                { stat: "Average", period: 86400 },
              ]),
              6,
              12,
            ),
          ],
        }),
      },
      child,
    );
    this.registerOutputs({ topicArn: this.topicArn });
  }
}
