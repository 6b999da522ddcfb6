/**
 * The VPC the site runs in: created (public and private subnets per AZ, an S3 gateway endpoint,
 * optionally one NAT gateway) or adopted from ids in config.
 *
 * In a VPC the program creates, the default egress is `public-ip`: tasks sit in public subnets with a
 * public IP, and their security group admits only the load balancer. That avoids a NAT gateway
 * (≈ $33/month each before data). In an existing VPC the default is its private subnets, without
 * public IPs: shared infrastructure already has its egress (and should have an S3 gateway endpoint).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { subnetCidrs } from "../../config/net";
import type { AwsConfig } from "../../config/schema";

export interface NetworkArgs {
  network: AwsConfig["network"];
}

export class Network extends pulumi.ComponentResource {
  public readonly vpcId: pulumi.Output<string>;
  public readonly publicSubnetIds: pulumi.Output<string[]>;
  public readonly privateSubnetIds: pulumi.Output<string[]>;
  /** Where the ECS tasks run, and whether they get a public IP. */
  public readonly taskSubnetIds: pulumi.Output<string[]>;
  public readonly assignPublicIp: boolean;
  /** The VPC's CIDR, when the program created it. */
  public readonly cidr?: string;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:aws:Network", name, {}, opts);
    const n = args.network;
    this.assignPublicIp = n.egress === "public-ip";

    if (n.mode === "existing") {
      this.vpcId = pulumi.output(n.vpcId);
      this.publicSubnetIds = pulumi.output(n.publicSubnetIds);
      this.privateSubnetIds = pulumi.output(n.privateSubnetIds);
    } else {
      this.cidr = n.cidr;
      const child = { parent: this };
      const azs = aws.getAvailabilityZonesOutput({ state: "available" }, child).names;
      const vpc = new aws.ec2.Vpc(
        `${name}-vpc`,
        {
          cidrBlock: n.cidr,
          enableDnsHostnames: true,
          enableDnsSupport: true,
          tags: { Name: `${name}-vpc` },
        },
        child,
      );
      const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id }, child);
      const subnetPrefix = Number(n.cidr.split("/")[1]) + 4;
      const publicCidrs = subnetCidrs(n.cidr, subnetPrefix, 0, n.azs);
      const privateCidrs = subnetCidrs(n.cidr, subnetPrefix, n.azs, n.azs);
      const subnet = (kind: "public" | "private", cidr: string, i: number) =>
        new aws.ec2.Subnet(
          `${name}-${kind}-${i}`,
          {
            vpcId: vpc.id,
            cidrBlock: cidr,
            availabilityZone: azs.apply((names) => {
              if (names.length < n.azs)
                throw new Error(
                  `attic-infra:aws.network.azs: ${n.azs} availability zones requested, the region has ${names.length}`,
                );
              return names[i]!;
            }),
            // Public subnets never hand out public IPs by themselves: only the tasks that ask for one get one.
            mapPublicIpOnLaunch: false,
            tags: { Name: `${name}-${kind}-${i}`, "attic-infra:tier": kind },
          },
          child,
        );
      const publicSubnets = publicCidrs.map((c, i) => subnet("public", c, i));
      const privateSubnets = privateCidrs.map((c, i) => subnet("private", c, i));

      const publicRoutes = new aws.ec2.RouteTable(
        `${name}-public`,
        {
          vpcId: vpc.id,
          routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }],
          tags: { Name: `${name}-public` },
        },
        child,
      );
      let privateDefaultRoute: aws.types.input.ec2.RouteTableRoute[] = [];
      if (n.egress === "nat-gateway") {
        const eip = new aws.ec2.Eip(`${name}-nat`, { domain: "vpc", tags: { Name: `${name}-nat` } }, child);
        const nat = new aws.ec2.NatGateway(
          `${name}-nat`,
          { allocationId: eip.id, subnetId: publicSubnets[0]!.id, tags: { Name: `${name}-nat` } },
          { ...child, dependsOn: [igw] },
        );
        privateDefaultRoute = [{ cidrBlock: "0.0.0.0/0", natGatewayId: nat.id }];
      }
      const privateRoutes = new aws.ec2.RouteTable(
        `${name}-private`,
        { vpcId: vpc.id, routes: privateDefaultRoute, tags: { Name: `${name}-private` } },
        child,
      );
      publicSubnets.forEach(
        (s, i) =>
          new aws.ec2.RouteTableAssociation(
            `${name}-public-${i}`,
            { subnetId: s.id, routeTableId: publicRoutes.id },
            child,
          ),
      );
      privateSubnets.forEach(
        (s, i) =>
          new aws.ec2.RouteTableAssociation(
            `${name}-private-${i}`,
            { subnetId: s.id, routeTableId: privateRoutes.id },
            child,
          ),
      );
      // S3 traffic from the tasks stays on the AWS network and off the NAT gateway's per-GB bill.
      new aws.ec2.VpcEndpoint(
        `${name}-s3`,
        {
          vpcId: vpc.id,
          serviceName: aws.getRegionOutput({}, child).region.apply((r) => `com.amazonaws.${r}.s3`),
          vpcEndpointType: "Gateway",
          routeTableIds: [publicRoutes.id, privateRoutes.id],
          tags: { Name: `${name}-s3` },
        },
        child,
      );
      this.vpcId = vpc.id;
      this.publicSubnetIds = pulumi.all(publicSubnets.map((s) => s.id));
      this.privateSubnetIds = pulumi.all(privateSubnets.map((s) => s.id));
    }
    this.taskSubnetIds = this.assignPublicIp ? this.publicSubnetIds : this.privateSubnetIds;
    this.registerOutputs({ vpcId: this.vpcId });
  }
}
