/**
 * Alarms that page someone before users notice, on one SNS topic, and a dashboard of the same
 * metrics: no healthy api task, unhealthy targets, 5XX answers, database CPU, free storage and
 * freeable memory, the chunk bucket outgrowing its budget, and garbage-collection runs the scheduler
 * could not start. Two kinds of failure have no metric and are AWS events instead, routed to the
 * same topic by EventBridge rules (free): a garbage-collection task that failed, and an ECS
 * deployment that failed (the circuit breaker then rolls it back).
 *
 * Every alarm uses a free metric scoped to this service: `AWS/ApplicationELB` by target group (on a
 * shared ALB the load balancer's own metrics count every application), `AWS/RDS`, `AWS/S3`,
 * `AWS/Scheduler` by the GC schedule's own group. None depends on Container Insights, which may be
 * off (it is, by default) or belong to another team's cluster.
 *
 * The topic policy is ours once EventBridge needs one (it replaces the topic's default policy), so it
 * grants CloudWatch too: without that statement every metric alarm above would stop delivering.
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
  clusterArn: pulumi.Input<string>;
  /** The GC task definition's family: its failed tasks are an alarm. */
  gcFamily: pulumi.Input<string>;
  /** The GC schedule's group, when GC is scheduled: dropped invocations are an alarm. */
  gcScheduleGroup?: pulumi.Input<string>;
  /** The services whose failed deployments are an alarm. */
  serviceArns: pulumi.Input<string>[];
}

/** RDS FreeableMemory below this pages someone: a db.t4g.micro has 1 GiB in all. */
export const FREEABLE_MEMORY_ALARM_BYTES = 100 * 1024 ** 2;

/**
 * The EventBridge pattern of a failed garbage-collection task (ECS "Task State Change"): stopped,
 * with a container that exited non-zero, or never started (`TaskFailedToStart`, no exit code).
 */
export function gcTaskFailedPattern(args: { clusterArn: string; taskDefinitionPrefix: string }): object {
  return {
    source: ["aws.ecs"],
    "detail-type": ["ECS Task State Change"],
    detail: {
      clusterArn: [args.clusterArn],
      lastStatus: ["STOPPED"],
      taskDefinitionArn: [{ prefix: args.taskDefinitionPrefix }],
      $or: [{ containers: { exitCode: [{ "anything-but": 0 }] } }, { stopCode: ["TaskFailedToStart"] }],
    },
  };
}

/** The EventBridge pattern of a failed ECS deployment of these services (the circuit breaker fired). */
export function deploymentFailedPattern(serviceArns: string[]): object {
  return {
    source: ["aws.ecs"],
    "detail-type": ["ECS Deployment State Change"],
    resources: serviceArns,
    detail: { eventName: ["SERVICE_DEPLOYMENT_FAILED"] },
  };
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
      this.emailConfirmation = `AWS has sent a confirmation email to ${a.alarms.email}: click its link, or no alarm is delivered (the subscription stays PendingConfirmation). SNS deletes it unconfirmed after 48 hours: then \`npm run verify\` fails on the alarm topic, and \`pulumi up --refresh\` (the deploy workflow's) subscribes again and AWS mails a new link`;
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
      alarm("rds-freeable-memory", {
        alarmDescription: `Less than ${FREEABLE_MEMORY_ALARM_BYTES / 1024 ** 2} MiB of database memory free for 15 minutes: the instance class is too small (or a query runs away).`,
        namespace: "AWS/RDS",
        metricName: "FreeableMemory",
        dimensions: db,
        statistic: "Minimum",
        period: 300,
        evaluationPeriods: 3,
        comparisonOperator: "LessThanThreshold",
        threshold: FREEABLE_MEMORY_ALARM_BYTES,
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
    if (args.gcScheduleGroup) {
      alarm("gc-invocation-dropped", {
        alarmDescription:
          "EventBridge Scheduler could not start the garbage-collection task, retries included: GC did not run (no task started; see the schedule's target).",
        namespace: "AWS/Scheduler",
        metricName: "InvocationDroppedCount",
        dimensions: { ScheduleGroup: args.gcScheduleGroup },
        statistic: "Sum",
        period: 300,
        evaluationPeriods: 1,
        comparisonOperator: "GreaterThanOrEqualToThreshold",
        threshold: 1,
        treatMissingData: "notBreaching",
      });
    }
    this.alarmNames = pulumi.all(alarms.map((x) => x.name));

    const region = aws.getRegionOutput({}, child).region;
    const account = aws.getCallerIdentityOutput({}, child).accountId;

    // AWS events without a metric: free rules on the default bus, straight to the topic.
    const events: Array<{
      id: string;
      description: string;
      pattern: pulumi.Output<object>;
      message: aws.types.input.cloudwatch.EventTargetInputTransformer;
    }> = [
      {
        id: "gc-task-failed",
        description: "An attic garbage-collection task stopped with a failure or never started",
        pattern: pulumi
          .all([args.clusterArn, args.gcFamily, region, account])
          .apply(([clusterArn, family, r, acct]) =>
            gcTaskFailedPattern({
              clusterArn,
              taskDefinitionPrefix: `arn:aws:ecs:${r}:${acct}:task-definition/${family}:`,
            }),
          ),
        message: {
          inputPaths: {
            task: "$.detail.taskArn",
            stopCode: "$.detail.stopCode",
            reason: "$.detail.stoppedReason",
          },
          inputTemplate:
            '"attic garbage collection failed: task <task> stopped (<stopCode>: <reason>). Its log is in the stack output logGroup, stream prefix gc."',
        },
      },
      {
        id: "ecs-deployment-failed",
        description: "An attic ECS deployment failed (the circuit breaker rolls it back)",
        pattern: pulumi.all(args.serviceArns).apply((arns) => deploymentFailedPattern(arns)),
        message: {
          inputPaths: { deployment: "$.detail.deploymentId", reason: "$.detail.reason" },
          inputTemplate:
            '"attic ECS deployment <deployment> failed: <reason>. The circuit breaker rolls the service back to its last working deployment; why the new tasks stopped: aws ecs describe-services with the stack output ecs."',
        },
      },
    ];
    const rules = events.map(
      (r) =>
        [
          r,
          new aws.cloudwatch.EventRule(
            `${name}-${r.id}`,
            { description: r.description, eventPattern: pulumi.jsonStringify(r.pattern) },
            child,
          ),
        ] as const,
    );
    const topicPolicy = new aws.sns.TopicPolicy(
      `${name}-alarms`,
      {
        arn: topic.arn,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "CloudWatchAlarms",
              Effect: "Allow",
              Principal: { Service: "cloudwatch.amazonaws.com" },
              Action: "sns:Publish",
              Resource: topic.arn,
              Condition: {
                StringEquals: { "aws:SourceAccount": account },
                ArnLike: {
                  "aws:SourceArn": pulumi.interpolate`arn:aws:cloudwatch:${region}:${account}:alarm:*`,
                },
              },
            },
            {
              Sid: "EventBridgeRules",
              Effect: "Allow",
              Principal: { Service: "events.amazonaws.com" },
              Action: "sns:Publish",
              Resource: topic.arn,
              Condition: { ArnEquals: { "aws:SourceArn": rules.map(([, rule]) => rule.arn) } },
            },
          ],
        }),
      },
      child,
    );
    for (const [r, rule] of rules)
      new aws.cloudwatch.EventTarget(
        `${name}-${r.id}`,
        { rule: rule.name, arn: topic.arn, inputTransformer: r.message },
        { ...child, dependsOn: [topicPolicy] },
      );
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
                      [
                        "AWS/RDS",
                        "FreeableMemory",
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
