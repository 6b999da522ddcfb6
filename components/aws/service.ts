/**
 * atticd on ECS Fargate. atticd's migrations take no lock, so the server is never scaled in
 * monolithic mode. Instead:
 * - the **api** service: each task runs a `migrate` container (`--mode db-migrations`, not
 *   essential) and then the `attic` container (`--mode api-server`), behind the load balancer,
 *   autoscaled on CPU and on requests per target;
 * - **garbage collection**: by default an EventBridge Scheduler schedule that starts one
 *   `--mode garbage-collector-once` task every `garbageCollection.interval` (cents a month), or with
 *   `gc: service` one always-on `--mode garbage-collector` task — never two at once.
 *
 * Both get atticd's TOML through ATTIC_SERVER_CONFIG_BASE64 and the database password as PGPASSWORD
 * from Secrets Manager. IAM is scoped to the ARNs involved; each role trusts its service only on
 * behalf of this account (aws:SourceAccount, plus aws:SourceArn where the service sets it).
 *
 * Stopping an api task (deploy, scale-in) drains it first: the load balancer stops sending new
 * requests and lets running ones finish for `deregistrationDelaySeconds`; then ECS sends SIGTERM and,
 * `stopTimeoutSeconds` later, SIGKILL. An upload that finishes within the drain is never cut.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { parseHumantime } from "../../config/humantime";
import type { AtticConfig, AwsConfig } from "../../config/schema";
import { awsName, NAME_RULES } from "./names";
import { ATTIC_PORT } from "./securityGroups";
import type { PolicyStatement } from "./storage";

export interface ServiceArgs {
  attic: AtticConfig;
  aws: AwsConfig;
  /** atticd's TOML (no secrets in it). */
  configToml: pulumi.Input<string>;
  /** ECS `valueFrom` for PGPASSWORD, and the secret's ARN (for IAM). */
  passwordValueFrom: pulumi.Input<string>;
  passwordSecretArn: pulumi.Input<string>;
  /** What the task role may do on the chunk bucket. */
  storageStatements: PolicyStatement[];
  subnetIds: pulumi.Input<string[]>;
  assignPublicIp: boolean;
  securityGroupId: pulumi.Input<string>;
  targetGroupArn: pulumi.Input<string>;
  /** `<lb arnSuffix>/<target group arnSuffix>`: the ALBRequestCountPerTarget label. */
  requestCountLabel: pulumi.Input<string>;
  /** The listener (rule) that must exist before targets register. */
  loadBalancerReady: pulumi.Resource[];
}

/** Inline policy document from statements. */
export function policyDocument(statements: PolicyStatement[]): pulumi.Output<string> {
  return pulumi.jsonStringify({ Version: "2012-10-17", Statement: statements });
}

/** An EventBridge Scheduler rate expression for a humantime interval, or undefined for "0s". */
export function rateExpression(interval: string): string | undefined {
  const seconds = Math.round(parseHumantime(interval) ?? 0);
  if (seconds === 0) return undefined;
  if (seconds % 86400 === 0) return `rate(${seconds / 86400} ${seconds === 86400 ? "day" : "days"})`;
  if (seconds % 3600 === 0) return `rate(${seconds / 3600} ${seconds === 3600 ? "hour" : "hours"})`;
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  return `rate(${minutes} ${minutes === 1 ? "minute" : "minutes"})`;
}

/**
 * A trust policy for an AWS service acting for this account only (confused-deputy protection):
 * `aws:SourceAccount` always, `aws:SourceArn` when given.
 */
export function assumeRolePolicy(
  service: string,
  account: pulumi.Input<string>,
  sourceArn?: pulumi.Input<string>,
): pulumi.Output<string> {
  return pulumi.jsonStringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Service: service },
        Action: "sts:AssumeRole",
        Condition: {
          StringEquals: { "aws:SourceAccount": account },
          ...(sourceArn ? { ArnLike: { "aws:SourceArn": sourceArn } } : {}),
        },
      },
    ],
  });
}

/**
 * Pulumi's timeouts for the api service: ECS's defaults (20 minutes) plus the time a deployment may
 * legitimately spend draining and stopping the old tasks and starting new ones, so that
 * waitForSteadyState outlasts the drain.
 */
export function serviceTimeouts(svc: AwsConfig["service"]): {
  create: string;
  update: string;
  delete: string;
} {
  const drain = svc.deregistrationDelaySeconds + svc.stopTimeoutSeconds + svc.healthCheckGracePeriodSeconds;
  const minutes = `${20 + Math.ceil(drain / 60)}m`;
  return { create: minutes, update: minutes, delete: minutes };
}

export class Service extends pulumi.ComponentResource {
  public readonly clusterArn: pulumi.Output<string>;
  public readonly clusterName: pulumi.Output<string>;
  public readonly serviceName: pulumi.Output<string>;
  public readonly logGroupName: pulumi.Output<string>;
  public readonly apiTaskDefinitionArn: pulumi.Output<string>;
  public readonly gcTaskDefinitionArn: pulumi.Output<string>;
  /** The api service: once it is steady, the server answers. */
  public readonly apiService: aws.ecs.Service;
  public readonly executionRoleArn: pulumi.Output<string>;
  /** What `aws ecs run-task` needs to run garbage collection by hand (docs/runbooks.md). */
  public readonly gcRunTask: pulumi.Output<{
    cluster: string;
    taskDefinition: string;
    subnets: string[];
    securityGroups: string[];
    assignPublicIp: boolean;
  }>;
  public readonly taskRoleArn: pulumi.Output<string>;
  /** The GC schedule and its group (`gc: scheduled` with an interval): the runbooks pause it, the alarms watch the group. */
  public readonly gcSchedule?: pulumi.Output<{ name: string; group: string }>;
  /** The GC task definition's family: the alarm on a failed GC run matches its tasks. */
  public readonly gcFamily: pulumi.Output<string>;
  /** The ECS services whose failed deployments page someone: the api service, and the GC service with `gc: service`. */
  public readonly serviceArns: pulumi.Output<string>[];
  /** The always-on GC service's name, with `gc: service`. */
  public readonly gcServiceName?: pulumi.Output<string>;

  constructor(name: string, args: ServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:Service", name, {}, opts);
    const child = { parent: this };
    const { attic, aws: site } = args;
    const svc = site.service;
    const stack = pulumi.getStack();

    if (svc.clusterArn) {
      this.clusterArn = pulumi.output(svc.clusterArn);
      this.clusterName = pulumi.output(svc.clusterArn.replace(/^.*:cluster\//, ""));
    } else {
      // Explicitly off unless asked for: an account-level default could otherwise turn it on.
      const cluster = new aws.ecs.Cluster(
        `${name}-cluster`,
        { settings: [{ name: "containerInsights", value: site.containerInsights ? "enabled" : "disabled" }] },
        child,
      );
      this.clusterArn = cluster.arn;
      this.clusterName = cluster.name;
    }

    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: `/attic-infra/${stack}`, retentionInDays: site.logRetentionDays },
      child,
    );
    this.logGroupName = logGroup.name;
    const region = aws.getRegionOutput({}, child).region;
    const account = aws.getCallerIdentityOutput({}, child).accountId;
    // The task role: AWS documents both conditions for it (ECS "Task IAM role"). The execution role
    // is assumed by ECS's agent while it starts a task; it gets the account condition only.
    const taskTrust = assumeRolePolicy(
      "ecs-tasks.amazonaws.com",
      account,
      pulumi.interpolate`arn:aws:ecs:${region}:${account}:*`,
    );
    const executionTrust = assumeRolePolicy("ecs-tasks.amazonaws.com", account);

    // Execution role: what ECS itself does to start a task — write logs, read the one secret, pull.
    const executionStatements: PolicyStatement[] = [
      {
        Sid: "Logs",
        Effect: "Allow",
        Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
        Resource: [pulumi.interpolate`${logGroup.arn}:*`],
      },
      {
        Sid: "DatabasePassword",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue"],
        Resource: [args.passwordSecretArn],
      },
    ];
    // Optional in config (the office does not run the image); config/load.ts requires it for aws.
    const image = attic.image;
    if (!image) throw new Error("attic-infra:attic.image is required for the aws site");
    const ecr = /^(\d+)\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com\/([^:@]+)/.exec(image);
    if (ecr) {
      // The public attic image needs no IAM; a mirror in ECR does.
      executionStatements.push(
        { Sid: "EcrAuth", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: ["*"] },
        {
          Sid: "EcrPull",
          Effect: "Allow",
          Action: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
          Resource: [`arn:aws:ecr:${ecr[2]}:${ecr[1]}:repository/${ecr[3]}`],
        },
      );
    }
    const executionRole = new aws.iam.Role(
      `${name}-execution`,
      {
        description: "ECS starts attic tasks: logs, the database password secret",
        assumeRolePolicy: executionTrust,
      },
      child,
    );
    new aws.iam.RolePolicy(
      `${name}-execution`,
      { role: executionRole.id, policy: policyDocument(executionStatements) },
      child,
    );
    // Task role: what atticd itself does — the chunk bucket, nothing else.
    const taskRole = new aws.iam.Role(
      `${name}-task`,
      {
        description: "atticd: read and write its chunk bucket",
        assumeRolePolicy: taskTrust,
      },
      child,
    );
    new aws.iam.RolePolicy(
      `${name}-task`,
      { role: taskRole.id, policy: policyDocument(args.storageStatements) },
      child,
    );
    this.executionRoleArn = executionRole.arn;
    this.taskRoleArn = taskRole.arn;

    const environment = [
      {
        name: "ATTIC_SERVER_CONFIG_BASE64",
        value: pulumi.output(args.configToml).apply((t) => Buffer.from(t).toString("base64")),
      },
      { name: "RUST_LOG", value: "info" },
    ];
    const secrets = [{ name: "PGPASSWORD", valueFrom: args.passwordValueFrom }];
    const logging = (prefix: string) => ({
      logDriver: "awslogs",
      options: { "awslogs-group": logGroup.name, "awslogs-region": region, "awslogs-stream-prefix": prefix },
    });
    const container = (containerName: string, mode: string, extra: Record<string, unknown>) => ({
      name: containerName,
      image,
      command: ["--mode", mode],
      environment,
      secrets,
      logConfiguration: logging(containerName),
      ...extra,
    });
    const taskDefinition = (id: string, containers: unknown[]) =>
      new aws.ecs.TaskDefinition(
        `${name}-${id}`,
        {
          family: awsName(`attic-infra-${stack}-${id}`, NAME_RULES.ecsFamily),
          cpu: String(svc.cpu),
          memory: String(svc.memory),
          networkMode: "awsvpc",
          requiresCompatibilities: ["FARGATE"],
          runtimePlatform: { operatingSystemFamily: "LINUX", cpuArchitecture: svc.cpuArchitecture },
          executionRoleArn: executionRole.arn,
          taskRoleArn: taskRole.arn,
          containerDefinitions: pulumi.jsonStringify(containers),
        },
        child,
      );

    const apiTask = taskDefinition("api", [
      container("migrate", "db-migrations", { essential: false }),
      container("attic", "api-server", {
        essential: true,
        dependsOn: [{ containerName: "migrate", condition: "SUCCESS" }],
        portMappings: [{ containerPort: ATTIC_PORT, protocol: "tcp" }],
        stopTimeout: svc.stopTimeoutSeconds,
        // An absolute path: the image sets no PATH we could rely on.
        healthCheck: {
          command: ["CMD", "/bin/wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${ATTIC_PORT}/`],
          interval: 15,
          timeout: 5,
          retries: 3,
          startPeriod: 30,
        },
      }),
    ]);
    this.apiTaskDefinitionArn = apiTask.arn;
    const network = {
      subnets: args.subnetIds,
      securityGroups: [args.securityGroupId],
      assignPublicIp: args.assignPublicIp,
    };

    this.apiService = new aws.ecs.Service(
      `${name}-api`,
      {
        cluster: this.clusterArn,
        taskDefinition: apiTask.arn,
        desiredCount: svc.minTasks,
        launchType: "FARGATE",
        platformVersion: "LATEST",
        networkConfiguration: network,
        loadBalancers: [
          { targetGroupArn: args.targetGroupArn, containerName: "attic", containerPort: ATTIC_PORT },
        ],
        healthCheckGracePeriodSeconds: svc.healthCheckGracePeriodSeconds,
        deploymentCircuitBreaker: { enable: true, rollback: true },
        deploymentMinimumHealthyPercent: 100,
        deploymentMaximumPercent: 200,
        propagateTags: "SERVICE",
        waitForSteadyState: true,
      },
      // Autoscaling owns the task count after creation.
      {
        ...child,
        dependsOn: args.loadBalancerReady,
        ignoreChanges: ["desiredCount"],
        customTimeouts: serviceTimeouts(svc),
      },
    );
    this.serviceName = this.apiService.name;

    const target = new aws.appautoscaling.Target(
      `${name}-api`,
      {
        serviceNamespace: "ecs",
        scalableDimension: "ecs:service:DesiredCount",
        resourceId: pulumi.interpolate`service/${this.clusterName}/${this.apiService.name}`,
        minCapacity: svc.minTasks,
        maxCapacity: svc.maxTasks,
      },
      child,
    );
    const targetTracking = (
      id: string,
      config: aws.types.input.appautoscaling.PolicyTargetTrackingScalingPolicyConfiguration,
    ) =>
      new aws.appautoscaling.Policy(
        `${name}-api-${id}`,
        {
          policyType: "TargetTrackingScaling",
          serviceNamespace: target.serviceNamespace,
          scalableDimension: target.scalableDimension,
          resourceId: target.resourceId,
          targetTrackingScalingPolicyConfiguration: config,
        },
        child,
      );
    targetTracking("cpu", {
      targetValue: svc.cpuTargetPercent,
      predefinedMetricSpecification: { predefinedMetricType: "ECSServiceAverageCPUUtilization" },
      scaleInCooldown: 300,
      scaleOutCooldown: 60,
    });
    targetTracking("requests", {
      targetValue: svc.requestsPerTargetPerMinute,
      predefinedMetricSpecification: {
        predefinedMetricType: "ALBRequestCountPerTarget",
        resourceLabel: args.requestCountLabel,
      },
      scaleInCooldown: 300,
      scaleOutCooldown: 60,
    });

    // Garbage collection.
    const gcMode = site.gc === "service" ? "garbage-collector" : "garbage-collector-once";
    const gcTask = taskDefinition("gc", [container("gc", gcMode, { essential: true })]);
    this.gcTaskDefinitionArn = gcTask.arn;
    this.gcFamily = gcTask.family;
    this.serviceArns = [this.apiService.arn];
    this.gcRunTask = pulumi
      .all([
        this.clusterArn,
        gcTask.family,
        pulumi.output(args.subnetIds),
        pulumi.output(args.securityGroupId),
      ])
      .apply(([cluster, family, subnets, sg]) => ({
        cluster,
        taskDefinition: family,
        subnets,
        securityGroups: [sg],
        assignPublicIp: args.assignPublicIp,
      }));
    if (site.gc === "service") {
      const gcService = new aws.ecs.Service(
        `${name}-gc`,
        {
          cluster: this.clusterArn,
          taskDefinition: gcTask.arn,
          desiredCount: 1,
          launchType: "FARGATE",
          platformVersion: "LATEST",
          networkConfiguration: network,
          // Exactly one collector: stop the old task before starting the new one.
          deploymentMinimumHealthyPercent: 0,
          deploymentMaximumPercent: 100,
          propagateTags: "SERVICE",
        },
        { ...child, dependsOn: [this.apiService] },
      );
      this.serviceArns.push(gcService.arn);
      this.gcServiceName = gcService.name;
    } else {
      const rate = rateExpression(attic.garbageCollection.interval);
      if (rate) {
        // A group of its own: Scheduler's metrics have no other dimension than the group, so the
        // alarm on dropped invocations would otherwise count every schedule of the default group.
        const group = new aws.scheduler.ScheduleGroup(`${name}-gc-group`, {}, child);
        const schedulerRole = new aws.iam.Role(
          `${name}-gc-scheduler`,
          {
            description: "EventBridge Scheduler starts the attic GC task",
            // Schedules of this stack's GC group only.
            assumeRolePolicy: assumeRolePolicy("scheduler.amazonaws.com", account, group.arn),
          },
          child,
        );
        new aws.iam.RolePolicy(
          `${name}-gc-scheduler`,
          {
            role: schedulerRole.id,
            policy: policyDocument([
              {
                // Every revision of the GC family: a new revision and the schedule pointing at it
                // are updated one after the other, and the role must allow either in between.
                Sid: "RunGcTask",
                Effect: "Allow",
                Action: ["ecs:RunTask"],
                Resource: [
                  pulumi.interpolate`arn:aws:ecs:${region}:${account}:task-definition/${gcTask.family}:*`,
                ],
                Condition: { ArnEquals: { "ecs:cluster": this.clusterArn } },
              },
              {
                Sid: "PassTaskRoles",
                Effect: "Allow",
                Action: ["iam:PassRole"],
                Resource: [executionRole.arn, taskRole.arn],
                Condition: { StringEquals: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } },
              },
            ]),
          },
          child,
        );
        const schedule = new aws.scheduler.Schedule(
          `${name}-gc`,
          {
            description: `attic garbage collection every ${attic.garbageCollection.interval}`,
            groupName: group.name,
            scheduleExpression: rate,
            // Explicit: a schedule disabled by hand (a restore pauses GC) is drift that the nightly
            // preview reports and the next `pulumi up --refresh` undoes.
            state: "ENABLED",
            flexibleTimeWindow: { mode: "OFF" },
            target: {
              arn: this.clusterArn,
              roleArn: schedulerRole.arn,
              ecsParameters: {
                taskDefinitionArn: gcTask.arn,
                launchType: "FARGATE",
                platformVersion: "LATEST",
                taskCount: 1,
                networkConfiguration: network,
              },
              // A retry follows only a failed RunTask, which started no task: it cannot make two
              // collectors. An invocation still failing after the last try is an alarm (monitoring.ts).
              retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
            },
          },
          { ...child, dependsOn: [this.apiService] },
        );
        this.gcSchedule = pulumi.output({ name: schedule.name, group: group.name });
      }
    }
    this.registerOutputs({ clusterArn: this.clusterArn, serviceName: this.serviceName });
  }
}
