/**
 * `npm run verify`'s alarm check (ci/commands/verify/alarms.ts) against the SNS stand-in
 * (test/support/fakeSns.ts) through the real AWS SDK client, and the stand-in's own rules. The rest
 * of the site is the fake atticd, all green, so the exit status is the alarm check's.
 * Proven: the verdicts, their sentences and the exit status; that verify only lists subscriptions,
 * page by page; that it skips without credentials. Not proven: SNS itself (see the stand-in's header).
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ListSubscriptionsByTopicCommand, ListTopicsCommand, SNSClient } from "@aws-sdk/client-sns";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { main } from "../ci/commands/verify/cli";
import { ALARM_CHECK } from "../ci/commands/verify/alarms";
import { nixConfSnippet, netrcLine } from "../components/attic/server";
import { mintToken } from "../components/attic/tokens";
import { FIXTURE_SIGNING_KEY_PEM } from "../ci/commands/synth/mocks";
import { FakeAtticd } from "./support/fakeAtticd";
import { FakeSns } from "./support/fakeSns";

const PUBLIC_KEY = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();
const N3X_KEY = "n3x:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/** Every variable through which the SDK could find credentials or an endpoint on this machine. */
const AWS_VARIABLES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_DEFAULT_PROFILE",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_SNS",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_CONFIG_FILE",
  "AWS_EC2_METADATA_DISABLED",
];
const saved = Object.fromEntries(AWS_VARIABLES.map((k) => [k, process.env[k]]));

let dir: string;
/** The SDK sees exactly `vars`: no credentials files, no instance metadata, nothing inherited. */
function awsEnvironment(vars: Record<string, string>): void {
  for (const k of AWS_VARIABLES) delete process.env[k];
  Object.assign(process.env, {
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "no-credentials"),
    AWS_CONFIG_FILE: path.join(dir, "no-config"),
    AWS_EC2_METADATA_DISABLED: "true",
    ...vars,
  });
}

let sns: FakeSns;
let snsEndpoint: string;
let atticd: FakeAtticd;
let atticEndpoint: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "verify-alarms-"));
  atticd = new FakeAtticd(PUBLIC_KEY);
  atticd.caches.set("n3x", {
    is_public: true,
    store_dir: "/nix/store",
    priority: 41,
    upstream_cache_key_names: [],
    retention_period: "Global",
    public_key: N3X_KEY,
  });
  atticEndpoint = `http://127.0.0.1:${await atticd.listen()}/`;
});
afterAll(async () => {
  await atticd.close();
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});
beforeEach(async () => {
  sns = new FakeSns("eu-central-1");
  snsEndpoint = await sns.listen();
  awsEnvironment({
    AWS_ACCESS_KEY_ID: sns.accessKeyId,
    AWS_SECRET_ACCESS_KEY: sns.secretAccessKey,
    AWS_ENDPOINT_URL_SNS: snsEndpoint,
  });
});
afterEach(() => sns.close());

/** The stack outputs of an AWS site served by the fake atticd, its alarms on `topicArn`. */
function outputs(topicArn: string) {
  const caches = {
    n3x: { substituter: `${atticEndpoint}n3x`, publicKey: N3X_KEY, public: true, priority: 41 },
  };
  const ci = mintToken(
    FIXTURE_SIGNING_KEY_PEM,
    {
      name: "ci",
      subject: "github-actions",
      validUntil: "2099-12-31",
      permissions: { n3x: ["pull", "push"] },
    },
    ["n3x"],
  );
  return {
    sites: ["aws"],
    tokenPublicKey: PUBLIC_KEY,
    aws: {
      endpoint: atticEndpoint,
      caches,
      tokens: { ci },
      nixConf: nixConfSnippet(Object.values(caches)),
      netrc: { ci: netrcLine(atticEndpoint, ci) },
      bucketName: "chunks",
      databaseEndpoint: "db.example:5432",
      ecs: { cluster: "cluster", apiService: "api" },
      logGroup: "/attic-infra/test",
      gcRunTask: {
        cluster: "arn:cluster",
        taskDefinition: "gc",
        subnets: [],
        securityGroups: [],
        assignPublicIp: false,
      },
      alarmTopicArn: topicArn,
    },
  };
}

async function verify(topicArn: string) {
  const file = path.join(dir, `outputs-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(outputs(topicArn)));
  let text = "";
  const code = await main(["--outputs", file, "--wait", "0.3"], (s) => (text += s));
  const alarm = text.split("\n").find((l) => l.includes(` aws: ${ALARM_CHECK} — `));
  return { code, text, alarm };
}

const email = (endpoint: string, confirmed: boolean) => ({ protocol: "email", endpoint, confirmed });

describe("verify: the alarm topic must have a confirmed subscription", () => {
  it("passes with a confirmed subscription, and names what is still pending (exit 0)", async () => {
    const topic = sns.topicArn("alarms");
    sns.topics.set(topic, [email("ops@example.com", true), email("lead@example.com", false)]);
    const r = await verify(topic);
    expect(r.code, r.text).toBe(0);
    expect(r.alarm).toBe(
      `✓    aws: ${ALARM_CHECK} — 1 confirmed (email ops@example.com); 1 still pending confirmation`,
    );
    // Read-only: one ListSubscriptionsByTopic, nothing else.
    expect(sns.requests).toEqual([
      { Action: "ListSubscriptionsByTopic", Version: "2010-03-31", TopicArn: topic },
    ]);
  });

  it("fails when every subscription is PendingConfirmation, and says what to do (exit 1)", async () => {
    const topic = sns.topicArn("alarms");
    sns.topics.set(topic, [email("ops@example.com", false)]);
    const r = await verify(topic);
    expect(r.code).toBe(1);
    expect(r.alarm).toBe(
      `✗    aws: ${ALARM_CHECK} — no confirmed subscription, 1 pending confirmation (email ops@example.com): no alarm reaches anyone. Click the link AWS mailed; SNS deletes an unconfirmed subscription after 48 hours, and then pulumi up --refresh subscribes again and AWS mails a new link`,
    );
    expect(r.text.split("\n").filter((l) => l.startsWith("✗"))).toHaveLength(1);
  });

  it("fails when the topic has no subscription at all (SNS deleted the unconfirmed one)", async () => {
    const topic = sns.topicArn("alarms");
    sns.topics.set(topic, []);
    const r = await verify(topic);
    expect(r.code).toBe(1);
    expect(r.alarm).toMatch(
      new RegExp(
        `^✗ {4}aws: ${ALARM_CHECK} — ${topic} has no subscription: no alarm reaches anyone\\. Set attic-infra:aws\\.alarms\\.email and run pulumi up --refresh`,
      ),
    );
  });

  it("reads every page: a confirmed subscription after 250 pending ones counts", async () => {
    const topic = sns.topicArn("alarms");
    sns.topics.set(topic, [
      ...Array.from({ length: 250 }, (_, i) => email(`pending${i}@example.com`, false)),
      email("ops@example.com", true),
    ]);
    const r = await verify(topic);
    expect(r.code, r.text).toBe(0);
    expect(r.alarm).toContain("1 confirmed (email ops@example.com); 250 still pending confirmation");
    expect(sns.requests.map((q) => q.NextToken === undefined)).toEqual([true, false, false]);
  });

  it("is skipped, not failed, without AWS credentials", async () => {
    const topic = sns.topicArn("alarms");
    sns.topics.set(topic, []);
    awsEnvironment({ AWS_ENDPOINT_URL_SNS: snsEndpoint });
    const r = await verify(topic);
    expect(r.code, r.text).toBe(0);
    expect(r.alarm).toBe(
      `skip aws: ${ALARM_CHECK} — no AWS credentials here (the check reads the topic's subscriptions: sns:ListSubscriptionsByTopic)`,
    );
    expect(sns.requests).toEqual([]);
  });

  it("fails, naming the permission, when the credentials may not list the topic's subscriptions", async () => {
    const topic = sns.topicArn("alarms");
    sns.topics.set(topic, [email("ops@example.com", true)]);
    sns.denied.add(topic);
    const r = await verify(topic);
    expect(r.code).toBe(1);
    expect(r.alarm).toContain(
      `these AWS credentials may not list the subscriptions of ${topic} (AuthorizationErrorException): grant sns:ListSubscriptionsByTopic on it`,
    );
  });

  it("fails when the topic does not exist, or the output is not a topic ARN", async () => {
    const gone = await verify(sns.topicArn("deleted"));
    expect(gone.code).toBe(1);
    expect(gone.alarm).toContain(`${sns.topicArn("deleted")} does not exist: nothing receives the alarms`);
    const bad = await verify("arn:topic");
    expect(bad.alarm).toBe(
      `✗    aws: ${ALARM_CHECK} — arn:topic (output alarmTopicArn) is not an SNS topic ARN`,
    );
  });
});

describe("the SNS stand-in is as strict as SNS (each rule of its header)", () => {
  const client = (over: Partial<ConstructorParameters<typeof SNSClient>[0]> = {}) =>
    new SNSClient({
      region: sns.region,
      endpoint: snsEndpoint,
      credentials: { accessKeyId: sns.accessKeyId, secretAccessKey: sns.secretAccessKey },
      maxAttempts: 1,
      ...over,
    });
  const list = (c: SNSClient, input: { TopicArn?: string; NextToken?: string }) =>
    c.send(new ListSubscriptionsByTopicCommand(input as { TopicArn: string })).then(
      (ok) => ok,
      (e: Error & { $metadata?: { httpStatusCode?: number } }) => ({
        error: e.name,
        status: e.$metadata?.httpStatusCode,
      }),
    );

  beforeEach(() => sns.topics.set(sns.topicArn("alarms"), [email("ops@example.com", false)]));

  it("answers a signed request with the documented XML: PendingConfirmation for an unconfirmed subscription", async () => {
    const r = await list(client(), { TopicArn: sns.topicArn("alarms") });
    expect(r).toMatchObject({
      Subscriptions: [
        {
          TopicArn: sns.topicArn("alarms"),
          Protocol: "email",
          SubscriptionArn: "PendingConfirmation",
          Owner: sns.account,
          Endpoint: "ops@example.com",
        },
      ],
    });
  });

  it("refuses unsigned, wrongly signed and tampered requests", async () => {
    const unsigned = await fetch(snsEndpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `Action=ListSubscriptionsByTopic&Version=2010-03-31&TopicArn=${encodeURIComponent(sns.topicArn("alarms"))}`,
    });
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toContain("<Code>MissingAuthenticationToken</Code>");
    const wrongSecret = client({
      credentials: { accessKeyId: sns.accessKeyId, secretAccessKey: "not-the-secret" },
    });
    expect(await list(wrongSecret, { TopicArn: sns.topicArn("alarms") })).toEqual({
      error: "SignatureDoesNotMatch",
      status: 403,
    });
    const unknownKey = client({ credentials: { accessKeyId: "AKIAUNKNOWN000000000", secretAccessKey: "x" } });
    expect(await list(unknownKey, { TopicArn: sns.topicArn("alarms") })).toEqual({
      error: "InvalidClientTokenId",
      status: 403,
    });
    // The body changed after signing.
    const tampered = client();
    tampered.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body: string };
        request.body = request.body.replace("alarms", "others");
        return next(args);
      },
      { step: "finalizeRequest", priority: "low" },
    );
    expect(await list(tampered, { TopicArn: sns.topicArn("alarms") })).toEqual({
      error: "SignatureDoesNotMatch",
      status: 403,
    });
  });

  it("refuses a signature scoped to another region", async () => {
    expect(await list(client({ region: "us-west-2" }), { TopicArn: sns.topicArn("alarms") })).toEqual({
      error: "SignatureDoesNotMatch",
      status: 403,
    });
  });

  it("refuses a request dated more than 15 minutes off", async () => {
    // The SDK corrects a skewed clock from the server's Date header: one attempt, no correction.
    const late = client({ systemClockOffset: -20 * 60 * 1000 });
    expect(await list(late, { TopicArn: sns.topicArn("alarms") })).toEqual({
      error: "RequestExpired",
      status: 400,
    });
  });

  it("refuses a request that is not a ListSubscriptionsByTopic of API version 2010-03-31", async () => {
    expect(
      await client()
        .send(new ListTopicsCommand({}))
        .catch((e: Error) => e.name),
    ).toBe("InvalidAction");
    const oldVersion = client();
    // Before signing: the request is validly signed, only its Version is wrong.
    oldVersion.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body: string };
        request.body = request.body.replace("Version=2010-03-31", "Version=2009-01-01");
        return next(args);
      },
      { step: "build" },
    );
    expect(await list(oldVersion, { TopicArn: sns.topicArn("alarms") })).toEqual({
      error: "InvalidParameterValue",
      status: 400,
    });
    const get = await fetch(`${snsEndpoint}/?Action=ListSubscriptionsByTopic`);
    expect(get.status).toBe(400);
  });

  it("a missing or malformed TopicArn is InvalidParameter", async () => {
    for (const input of [
      {},
      { TopicArn: "alarms" },
      { TopicArn: "arn:aws:sns:us-west-2:123456789012:alarms" },
    ])
      expect(await list(client(), input), JSON.stringify(input)).toEqual({
        error: "InvalidParameterException",
        status: 400,
      });
  });

  it("an unknown topic is NotFound, a denied one AuthorizationError", async () => {
    expect(await list(client(), { TopicArn: sns.topicArn("nope") })).toEqual({
      error: "NotFoundException",
      status: 404,
    });
    sns.denied.add(sns.topicArn("alarms"));
    expect(await list(client(), { TopicArn: sns.topicArn("alarms") })).toEqual({
      error: "AuthorizationErrorException",
      status: 403,
    });
  });

  it("pages of 100 with a NextToken; a foreign token is refused", async () => {
    const topic = sns.topicArn("alarms");
    sns.topics.set(
      topic,
      Array.from({ length: 150 }, (_, i) => email(`a${i}@example.com`, true)),
    );
    sns.topics.set(
      sns.topicArn("other"),
      Array.from({ length: 150 }, (_, i) => email(`b${i}@example.com`, true)),
    );
    const first = (await list(client(), { TopicArn: topic })) as {
      Subscriptions: unknown[];
      NextToken?: string;
    };
    expect(first.Subscriptions).toHaveLength(100);
    expect(first.NextToken).toBeTruthy();
    const second = (await list(client(), { TopicArn: topic, NextToken: first.NextToken! })) as {
      Subscriptions: unknown[];
      NextToken?: string;
    };
    expect(second.Subscriptions).toHaveLength(50);
    expect(second.NextToken).toBeUndefined();
    expect(await list(client(), { TopicArn: sns.topicArn("other"), NextToken: first.NextToken! })).toEqual({
      error: "InvalidParameterException",
      status: 400,
    });
    expect(await list(client(), { TopicArn: topic, NextToken: "made-up" })).toEqual({
      error: "InvalidParameterException",
      status: 400,
    });
  });
});
