/**
 * A stand-in for Amazon SNS's ListSubscriptionsByTopic, the one call `npm run verify` makes
 * (ci/commands/verify/alarms.ts), served over HTTP for the AWS SDK v3 client (AWS_ENDPOINT_URL_SNS).
 * It is as strict as SNS on what verify sends and answers what SNS answers. Each rule, its source,
 * and the test in test/verifyAlarms.test.ts that fails if the rule were lenient:
 *
 * 1. The Query protocol: POST with an `application/x-www-form-urlencoded` body; `Action` and
 *    `Version=2010-03-31` are required (SNS API Reference, "Common Parameters"; MissingAction 400,
 *    InvalidAction 400, "Common Error Types"). VERIFIED (the request client-sns 3.1178 sends was
 *    captured here). Stricter than SNS: GET query requests are refused (the SDK never sends one).
 *    Test: "refuses a request that is not a ListSubscriptionsByTopic of API version 2010-03-31".
 * 2. Signature Version 4 (IAM User Guide, "Create a signed AWS API request"): an `Authorization`
 *    header `AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/sns/aws4_request,
 *    SignedHeaders=…, Signature=…`, `X-Amz-Date`, `host` among the signed headers; the signature is
 *    recomputed here from the canonical request and must match. No header: 403
 *    MissingAuthenticationToken; malformed: 400 IncompleteSignature; unknown key: 403
 *    InvalidClientTokenId ("Common Error Types"); another region or service in the scope, or a wrong
 *    signature: 403 SignatureDoesNotMatch (ASSUMED: the code SNS gives; the refusal is VERIFIED by
 *    the SigV4 specification). Tests: "refuses unsigned, wrongly signed and tampered requests" and
 *    "refuses a signature scoped to another region".
 * 3. A request dated more than 15 minutes from the server's clock: 400 RequestExpired ("Common Error
 *    Types"). Test: "refuses a request dated more than 15 minutes off".
 * 4. `TopicArn` is required and must be an SNS topic ARN of this endpoint's region: else 400
 *    InvalidParameter (API_ListSubscriptionsByTopic, Errors; ASSUMED for the region mismatch, which
 *    SNS reports the same way). A topic that does not exist: 404 NotFound; a caller without
 *    sns:ListSubscriptionsByTopic on it: 403 AuthorizationError (same page). Tests: "a missing or
 *    malformed TopicArn is InvalidParameter", "an unknown topic is NotFound, a denied one
 *    AuthorizationError".
 * 5. At most 100 subscriptions per answer, then a `NextToken` that the next request passes back; a
 *    token this server did not issue for this topic: 400 InvalidParameter (API_ListSubscriptionsByTopic:
 *    "up to 100 … If there are more subscriptions, a NextToken is also returned"; the refusal of a
 *    foreign token ASSUMED). Test: "pages of 100 with a NextToken; a foreign token is refused".
 * 6. Answers are XML in the 2010-03-31 namespace: `<ListSubscriptionsByTopicResponse>` with
 *    `<Subscriptions><member>` (TopicArn, Protocol, SubscriptionArn, Owner, Endpoint; API_Subscription)
 *    and `<ResponseMetadata><RequestId>`; errors `<ErrorResponse><Error><Type>Sender|Receiver</Type>
 *    <Code>…</Code><Message>…</Message></Error><RequestId>…`. An unconfirmed subscription's
 *    SubscriptionArn is the literal `PendingConfirmation`, a confirmed one its ARN. VERIFIED (shapes
 *    the SDK parses, run against client-sns 3.1178; the literal from SNS's documented responses).
 *    Test: every test above reads answers through the real SDK client.
 *
 * Not modelled: throttling (30 TPS), the 48-hour deletion of unconfirmed subscriptions (a scenario
 * sets the topic's subscriptions directly), session tokens.
 */
import { createHash, createHmac, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface FakeSubscription {
  protocol: string;
  endpoint: string;
  confirmed: boolean;
}

const NS = "http://sns.amazonaws.com/doc/2010-03-31/";
const TOPIC_ARN = /^arn:aws:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256})$/;
const PAGE = 100;
const MAX_SKEW_MS = 15 * 60 * 1000;

const xml = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

class SnsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** RFC 3986 encoding, as SigV4 canonicalizes query parameters. */
const uriEncode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export class FakeSns {
  readonly accessKeyId = "AKIAFAKESNSSTANDIN01";
  readonly secretAccessKey = "fake/sns+stand-in/secret/key/0123456789";
  readonly account = "123456789012";
  /** Topic ARN → its subscriptions, in order. */
  readonly topics = new Map<string, FakeSubscription[]>();
  /** Topics the caller may not list (AuthorizationError). */
  readonly denied = new Set<string>();
  /** Every request that reached an action: its parameters. */
  readonly requests: Array<Record<string, string>> = [];
  /** Every refusal: its code. */
  readonly refusals: string[] = [];
  private server?: Server;
  private readonly tokens = new Map<string, { topic: string; offset: number }>();

  constructor(readonly region = "us-east-1") {}

  topicArn(name: string): string {
    return `arn:aws:sns:${this.region}:${this.account}:${name}`;
  }

  /** Starts listening; returns the endpoint URL for AWS_ENDPOINT_URL_SNS. */
  async listen(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address() as { port: number };
    return `http://127.0.0.1:${address.port}`;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      let answer: string;
      let status = 200;
      try {
        answer = this.answer(req, body);
      } catch (err) {
        if (!(err instanceof SnsError)) throw err;
        status = err.status;
        this.refusals.push(err.code);
        answer = `<ErrorResponse xmlns="${NS}"><Error><Type>${status >= 500 ? "Receiver" : "Sender"}</Type><Code>${err.code}</Code><Message>${xml(err.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
      }
      res.writeHead(status, { "content-type": "text/xml" });
      res.end(answer);
    });
  }

  private answer(req: IncomingMessage, body: Buffer): string {
    // Rule 1: the Query protocol, by POST.
    if (req.method !== "POST")
      throw new SnsError(400, "InvalidAction", `${req.method} is not served here; POST a form`);
    if (!String(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded"))
      throw new SnsError(400, "InvalidQueryParameter", "the body is not application/x-www-form-urlencoded");
    // Rules 2 and 3: a valid Signature Version 4.
    this.authenticate(req, body);
    const params = Object.fromEntries(new URLSearchParams(body.toString("utf8")));
    if (!params.Action) throw new SnsError(400, "MissingAction", "the request has no Action");
    if (params.Action !== "ListSubscriptionsByTopic")
      throw new SnsError(400, "InvalidAction", `Action ${params.Action} is not served by this stand-in`);
    if (params.Version !== "2010-03-31")
      throw new SnsError(
        400,
        "InvalidParameterValue",
        `Version ${params.Version ?? "(none)"} is not 2010-03-31`,
      );
    this.requests.push(params);
    return this.listSubscriptionsByTopic(params);
  }

  private authenticate(req: IncomingMessage, body: Buffer): void {
    const auth = req.headers.authorization;
    if (!auth)
      throw new SnsError(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
        auth,
      );
    const amzDate = req.headers["x-amz-date"];
    if (!m || typeof amzDate !== "string" || !/^\d{8}T\d{6}Z$/.test(amzDate))
      throw new SnsError(400, "IncompleteSignature", "the Authorization header or X-Amz-Date is malformed");
    const [, key, date, region, service, signedHeaders, signature] = m as unknown as string[];
    if (key !== this.accessKeyId)
      throw new SnsError(
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
      );
    if (date !== amzDate.slice(0, 8) || region !== this.region || service !== "sns")
      throw new SnsError(
        403,
        "SignatureDoesNotMatch",
        `Credential should be scoped to a valid region (${this.region}) and service (sns), and to the request's date`,
      );
    const when = Date.parse(
      `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
    );
    if (Math.abs(Date.now() - when) > MAX_SKEW_MS)
      throw new SnsError(
        400,
        "RequestExpired",
        "Request has expired (X-Amz-Date is more than 15 minutes off)",
      );
    const names = signedHeaders!.split(";");
    if (!names.includes("host"))
      throw new SnsError(400, "IncompleteSignature", "the host header must be signed");
    const [path, query = ""] = (req.url ?? "/").split("?");
    const canonicalQuery = [...new URLSearchParams(query)]
      .map(([k, v]) => [uriEncode(k), uriEncode(v)])
      .sort(([a, x], [b, y]) => (a! < b! ? -1 : a! > b! ? 1 : x! < y! ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    const canonicalHeaders = names
      .map((n) => {
        const v = req.headers[n];
        if (v === undefined) throw new SnsError(400, "IncompleteSignature", `signed header ${n} is missing`);
        return `${n}:${String(v).trim().replace(/\s+/g, " ")}\n`;
      })
      .join("");
    const canonicalRequest = [
      req.method,
      path,
      canonicalQuery,
      canonicalHeaders,
      signedHeaders,
      sha256(body),
    ].join("\n");
    const scope = `${date}/${region}/${service}/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
    const signingKey = hmac(
      hmac(hmac(hmac(`AWS4${this.secretAccessKey}`, date!), region!), service!),
      "aws4_request",
    );
    if (createHmac("sha256", signingKey).update(stringToSign).digest("hex") !== signature)
      throw new SnsError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
      );
  }

  private listSubscriptionsByTopic(params: Record<string, string>): string {
    // Rule 4: the topic.
    const arn = params.TopicArn;
    const m = arn ? TOPIC_ARN.exec(arn) : null;
    if (!arn || !m || m[1] !== this.region)
      throw new SnsError(400, "InvalidParameter", "Invalid parameter: TopicArn");
    if (this.denied.has(arn))
      throw new SnsError(
        403,
        "AuthorizationError",
        "User is not authorized to perform: SNS:ListSubscriptionsByTopic",
      );
    const subs = this.topics.get(arn);
    if (!subs) throw new SnsError(404, "NotFound", "Topic does not exist");
    // Rule 5: pages of 100.
    let offset = 0;
    if (params.NextToken !== undefined) {
      const t = this.tokens.get(params.NextToken);
      if (!t || t.topic !== arn) throw new SnsError(400, "InvalidParameter", "Invalid parameter: NextToken");
      offset = t.offset;
    }
    const page = subs.slice(offset, offset + PAGE);
    let next = "";
    if (offset + PAGE < subs.length) {
      const token = randomUUID();
      this.tokens.set(token, { topic: arn, offset: offset + PAGE });
      next = `<NextToken>${token}</NextToken>`;
    }
    // Rule 6: the answer.
    const members = page
      .map(
        (s, i) =>
          `<member><TopicArn>${xml(arn)}</TopicArn><Protocol>${xml(s.protocol)}</Protocol><SubscriptionArn>${s.confirmed ? `${xml(arn)}:${String(offset + i).padStart(8, "0")}-0000-4000-8000-000000000000` : "PendingConfirmation"}</SubscriptionArn><Owner>${this.account}</Owner><Endpoint>${xml(s.endpoint)}</Endpoint></member>`,
      )
      .join("");
    return `<ListSubscriptionsByTopicResponse xmlns="${NS}"><ListSubscriptionsByTopicResult><Subscriptions>${members}</Subscriptions>${next}</ListSubscriptionsByTopicResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></ListSubscriptionsByTopicResponse>`;
  }
}
