/**
 * The AWS site: atticd on ECS Fargate behind an ALB, chunks in S3, metadata in RDS PostgreSQL.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as tls from "@pulumi/tls";
import type { AtticConfig, AwsConfig } from "../../config/schema";
import { AtticServer, type CacheOutput } from "../attic/server";

export interface AwsSiteArgs {
  attic: AtticConfig;
  aws: AwsConfig;
  signingKey: tls.PrivateKey;
}

export class AwsSite extends pulumi.ComponentResource {
  public readonly endpoint: pulumi.Output<string>;
  public readonly caches: pulumi.Output<Record<string, CacheOutput>>;
  public readonly tokens: pulumi.Output<Record<string, string>>;
  public readonly nixConf: pulumi.Output<string>;
  public readonly netrc: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: AwsSiteArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:Site", name, {}, opts);
    const server = new AtticServer(
      `${name}-attic`,
      { attic: args.attic, apiEndpoint: `https://${args.aws.hostname}/`, signingKey: args.signingKey },
      { parent: this },
    );
    this.endpoint = server.endpoint;
    this.caches = server.caches;
    this.tokens = server.tokens;
    this.nixConf = server.nixConf;
    this.netrc = server.netrc;
    this.registerOutputs({ endpoint: this.endpoint });
  }
}
