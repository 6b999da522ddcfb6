/**
 * TLS for the site's host name: an ACM certificate validated through Route53 and an alias record to
 * the load balancer when `dns.zoneName` is set, or a certificate ARN from config (DNS is yours).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { AwsConfig } from "../../config/schema";

export interface CertificateArgs {
  hostname: string;
  dns?: AwsConfig["dns"];
  certificateArn?: string;
}

export class SiteCertificate extends pulumi.ComponentResource {
  /** A certificate ARN that is issued (validation complete) by the time anything uses it. */
  public readonly certificateArn: pulumi.Output<string>;
  private readonly zoneId?: pulumi.Output<string>;
  private readonly hostname: string;
  private readonly baseName: string;

  constructor(name: string, args: CertificateArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:Certificate", name, {}, opts);
    const child = { parent: this };
    this.hostname = args.hostname;
    this.baseName = name;

    if (!args.dns) {
      this.certificateArn = pulumi.output(args.certificateArn!);
      this.registerOutputs({ certificateArn: this.certificateArn });
      return;
    }
    const zone = aws.route53.getZoneOutput({ name: args.dns.zoneName, privateZone: false }, child);
    this.zoneId = zone.zoneId;
    const cert = new aws.acm.Certificate(
      `${name}-cert`,
      { domainName: args.hostname, validationMethod: "DNS" },
      child,
    );
    const option = cert.domainValidationOptions.apply((o) => o[0]!);
    const record = new aws.route53.Record(
      `${name}-cert-validation`,
      {
        zoneId: zone.zoneId,
        name: option.resourceRecordName,
        type: option.resourceRecordType,
        records: [option.resourceRecordValue],
        ttl: 300,
        allowOverwrite: true,
      },
      child,
    );
    const validation = new aws.acm.CertificateValidation(
      `${name}-cert`,
      { certificateArn: cert.arn, validationRecordFqdns: [record.fqdn] },
      child,
    );
    this.certificateArn = validation.certificateArn;
    this.registerOutputs({ certificateArn: this.certificateArn });
  }

  /** The host name's A record, aliased to the load balancer (only when the program manages DNS). */
  aliasTo(target: {
    dnsName: pulumi.Input<string>;
    zoneId: pulumi.Input<string>;
  }): aws.route53.Record | undefined {
    if (!this.zoneId) return undefined;
    return new aws.route53.Record(
      `${this.baseName}-alias`,
      {
        zoneId: this.zoneId,
        name: this.hostname,
        type: "A",
        aliases: [{ name: target.dnsName, zoneId: target.zoneId, evaluateTargetHealth: true }],
      },
      { parent: this },
    );
  }
}
