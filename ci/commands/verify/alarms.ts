/**
 * Whether the AWS site's alarms reach anyone: the alarm topic needs at least one confirmed
 * subscription. An email subscription delivers nothing until its link is clicked, and SNS deletes it
 * unconfirmed after 48 hours, while Pulumi's state keeps it until a refresh; every alarm then fires
 * into nothing, and nothing else says so.
 *
 * Read-only: one SNS ListSubscriptionsByTopic per page (IAM: sns:ListSubscriptionsByTopic on the
 * topic), with the AWS SDK's default credentials and endpoint (AWS_ENDPOINT_URL_SNS overrides it,
 * as for a local stand-in). Without credentials the check is skipped, not failed: verify also runs
 * where only the cache is reachable.
 */
import { paginateListSubscriptionsByTopic, SNSClient, type Subscription } from "@aws-sdk/client-sns";
import type { SiteRun } from "./site";

export const ALARM_CHECK = "alarm topic has a confirmed subscription";

/** SNS reports an unconfirmed subscription with this literal instead of an ARN. */
const PENDING = "PendingConfirmation";

const TOPIC_ARN = /^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}$/;

/** Every subscription of the topic, all pages. */
async function subscriptions(topicArn: string, region: string): Promise<Subscription[]> {
  const client = new SNSClient({
    region,
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 20_000 },
  });
  try {
    const all: Subscription[] = [];
    for await (const page of paginateListSubscriptionsByTopic({ client }, { TopicArn: topicArn }))
      all.push(...(page.Subscriptions ?? []));
    return all;
  } finally {
    client.destroy();
  }
}

const describe = (s: Subscription) => `${s.Protocol ?? "?"} ${s.Endpoint ?? "?"}`;

export async function checkAlarmTopic(run: SiteRun, topicArn: string): Promise<void> {
  const region = TOPIC_ARN.exec(topicArn)?.[1];
  if (!region) {
    run.add(ALARM_CHECK, "fail", `${topicArn} (output alarmTopicArn) is not an SNS topic ARN`);
    return;
  }
  let found: Subscription[];
  try {
    found = await subscriptions(topicArn, region);
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    if (e.name === "CredentialsProviderError") {
      run.add(
        ALARM_CHECK,
        "skip",
        "no AWS credentials here (the check reads the topic's subscriptions: sns:ListSubscriptionsByTopic)",
      );
    } else if (e.name === "AuthorizationErrorException" || e.$metadata?.httpStatusCode === 403) {
      run.add(
        ALARM_CHECK,
        "fail",
        `these AWS credentials may not list the subscriptions of ${topicArn} (${e.name}): grant sns:ListSubscriptionsByTopic on it, or run verify where that is allowed`,
      );
    } else if (e.name === "NotFoundException") {
      run.add(
        ALARM_CHECK,
        "fail",
        `${topicArn} does not exist: nothing receives the alarms; run pulumi up --refresh to create it again`,
      );
    } else {
      run.add(
        ALARM_CHECK,
        "fail",
        `listing the subscriptions of ${topicArn} failed: ${e.name}: ${e.message}`,
      );
    }
    return;
  }
  const confirmed = found.filter((s) => s.SubscriptionArn?.startsWith("arn:"));
  const pending = found.filter((s) => s.SubscriptionArn === PENDING);
  if (confirmed.length > 0) {
    run.add(
      ALARM_CHECK,
      "pass",
      `${confirmed.length} confirmed (${confirmed.map(describe).join(", ")})${pending.length > 0 ? `; ${pending.length} still pending confirmation` : ""}`,
    );
  } else if (pending.length > 0) {
    run.add(
      ALARM_CHECK,
      "fail",
      `no confirmed subscription, ${pending.length} pending confirmation (${pending.map(describe).join(", ")}): no alarm reaches anyone. Click the link AWS mailed; SNS deletes an unconfirmed subscription after 48 hours, and then pulumi up --refresh subscribes again and AWS mails a new link`,
    );
  } else {
    run.add(
      ALARM_CHECK,
      "fail",
      `${topicArn} has no subscription: no alarm reaches anyone. Set attic-infra:aws.alarms.email and run pulumi up --refresh (SNS deletes a subscription left unconfirmed for 48 hours), or subscribe another endpoint`,
    );
  }
}
