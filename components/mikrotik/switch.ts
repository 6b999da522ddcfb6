/**
 * The office switch (Mikrotik CRS326, RouterOS 7): the cache's VLAN, its DHCP server and DNS.
 */
import * as pulumi from "@pulumi/pulumi";
import type { MikrotikConfig } from "../../config/schema";

export interface SwitchArgs {
  mikrotik: MikrotikConfig;
}

export interface Lease {
  name: string;
  mac: string;
  address: string;
}

export class MikrotikSwitch extends pulumi.ComponentResource {
  /** The switch's address on the cache VLAN: clients' gateway and DNS server. */
  public readonly gateway: pulumi.Output<string>;
  public readonly vlanId: pulumi.Output<number>;
  public readonly leases: pulumi.Output<Lease[]>;
  /** DNS name → address, as the switch answers them. */
  public readonly dnsRecords: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: SwitchArgs, opts?: pulumi.ComponentResourceOptions) {
    super("attic:mikrotik:Switch", name, {}, opts);
    const m = args.mikrotik;
    this.gateway = pulumi.output(m.address.split("/")[0]!);
    this.vlanId = pulumi.output(m.vlanId);
    this.leases = pulumi.output(m.dhcp.leases.map((l) => ({ name: l.name, mac: l.mac, address: l.address })));
    this.dnsRecords = pulumi.output(Object.fromEntries(m.dns.records.map((r) => [r.name, r.address])));
    this.registerOutputs({ gateway: this.gateway, vlanId: this.vlanId });
  }
}
