/** attic-infra:mikrotik — the office switch: the cache VLAN, DHCP and DNS, over SSH. */
import { z } from "zod";
import { evenIfInvalid, int, ipv4, isStr, loose, records, requireHostKey, show, sshFields } from "./fields";
import { ipv4InNetwork, ipv4ToNumber, isIpv4, isNetworkOrBroadcast, parseIpv4Interface } from "./net";

const interfaceName = z
  .string({ error: (i) => `${show(i.input)} is not an interface name` })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/, {
    error: (i) => `${show(i.input)} is not a RouterOS interface name (e.g. ether1, sfp-sfpplus1)`,
  });

const dnsName = z
  .string({ error: (i) => `${show(i.input)} is not a DNS name` })
  .regex(/^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, {
    error: (i) => `${show(i.input)} is not a DNS name`,
  });

const routerosTime = z
  .string({ error: (i) => `${show(i.input)} is not a RouterOS time` })
  .regex(/^(?=\d)(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$|^\d{1,2}:\d{2}:\d{2}$/, {
    error: (i) => `${show(i.input)} is not a RouterOS time; write e.g. 1d, 12h or 00:30:00`,
  });

const mac = z
  .string({ error: (i) => `${show(i.input)} is not a MAC address` })
  .regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, {
    error: (i) => `${show(i.input)} is not a MAC address (AA:BB:CC:DD:EE:01)`,
  })
  .transform((s) => s.toUpperCase());

export const mikrotikSchema = z
  .strictObject({
    ...sshFields("admin"),
    /** Alternative to privateKey: `pulumi config set --secret --path mikrotik.password`. */
    password: z.string().min(1).optional(),
    /** The port you manage the switch through. It never joins the bridge. */
    managementPort: interfaceName,
    bridge: interfaceName.default("bridge-attic"),
    vlanId: int("a VLAN id", 1, 4094),
    accessPorts: z.array(interfaceName).min(1, { error: "is empty; list the ports the cache VLAN is on" }),
    /** The switch's address on the cache VLAN, with prefix: the DHCP gateway and DNS server. */
    address: z.string().refine((s) => parseIpv4Interface(s) !== undefined, {
      error: (i) => `${show(i.input)} is not an address with prefix length (e.g. 10.0.0.1/24)`,
    }),
    dhcp: z.strictObject({
      /** first-last, inside address's subnet. */
      pool: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}-\d{1,3}(\.\d{1,3}){3}$/, {
        error: (i) => `${show(i.input)} is not an address range (10.0.0.100-10.0.0.199)`,
      }),
      leaseTime: routerosTime.default("1d"),
      /** The DNS domain DHCP hands out. */
      domain: dnsName.default("lan"),
      leases: z.array(z.strictObject({ name: dnsName, mac, address: ipv4 })).default([]),
    }),
    dns: z
      .strictObject({
        upstream: z
          .array(ipv4)
          .min(1, { error: "is empty; the switch needs an upstream resolver" })
          .default(["1.1.1.1", "9.9.9.9"]),
        records: z.array(z.strictObject({ name: dnsName, address: ipv4 })).default([]),
      })
      .prefault({}),
    /** Minutes after which an unconfirmed change restores the backup taken before it. */
    rollbackMinutes: int("minutes", 2, 60).default(5),
  })
  .superRefine((raw, ctx) => {
    const m = loose(raw);
    requireHostKey(m, ctx);
    if (m.privateKey && m.password)
      ctx.addIssue({ code: "custom", path: ["password"], message: "set privateKey or password, not both" });
    const seen = new Set<string>();
    const ports = Array.isArray(m.accessPorts) ? m.accessPorts : [];
    ports.forEach((p, i) => {
      if (!isStr(p)) return;
      if (p === m.managementPort)
        ctx.addIssue({
          code: "custom",
          path: ["accessPorts", i],
          message: `${show(p)} is the management port; it must never join the bridge (you would lose access to the switch)`,
        });
      if (seen.has(p))
        ctx.addIssue({ code: "custom", path: ["accessPorts", i], message: `${show(p)} is listed twice` });
      seen.add(p);
    });
    if (isStr(m.bridge) && (m.bridge === m.managementPort || ports.includes(m.bridge)))
      ctx.addIssue({
        code: "custom",
        path: ["bridge"],
        message: `${show(m.bridge)} is also a port name; name the bridge differently`,
      });

    const dhcp = loose(m.dhcp);
    const leases = records(dhcp.leases);
    const macs = new Set<string>();
    const addrs = new Set<string>();
    for (const [l, i] of leases) {
      if (isStr(l.mac) && macs.has(l.mac.toUpperCase()))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "leases", i, "mac"],
          message: `${show(l.mac)} has two leases`,
        });
      if (isStr(l.address) && addrs.has(l.address))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "leases", i, "address"],
          message: `${show(l.address)} is leased twice`,
        });
      if (isStr(l.mac)) macs.add(l.mac.toUpperCase());
      if (isStr(l.address)) addrs.add(l.address);
    }
    const names = new Set<string>();
    for (const [r, i] of records(loose(m.dns).records)) {
      if (!isStr(r.name)) continue;
      if (names.has(r.name.toLowerCase()))
        ctx.addIssue({
          code: "custom",
          path: ["dns", "records", i, "name"],
          message: `${show(r.name)} is declared twice`,
        });
      names.add(r.name.toLowerCase());
    }

    // The rest compares addresses with the gateway's subnet.
    const iface = isStr(m.address) ? parseIpv4Interface(m.address) : undefined;
    if (!iface) return;
    const subnet = iface.network;
    if (isNetworkOrBroadcast(iface.address, subnet))
      ctx.addIssue({
        code: "custom",
        path: ["address"],
        message: `${show(m.address)} is the network or broadcast address of ${subnet}`,
      });
    if (isStr(dhcp.pool) && /^[^-]+-[^-]+$/.test(dhcp.pool)) {
      const [first, last] = dhcp.pool.split("-") as [string, string];
      for (const [end, ip] of [
        ["first", first],
        ["last", last],
      ] as const) {
        if (!isIpv4(ip))
          ctx.addIssue({
            code: "custom",
            path: ["dhcp", "pool"],
            message: `${show(ip)} (${end} address) is not an IPv4 address`,
          });
        else if (!ipv4InNetwork(ip, subnet) || isNetworkOrBroadcast(ip, subnet))
          ctx.addIssue({
            code: "custom",
            path: ["dhcp", "pool"],
            message: `${show(ip)} is outside the gateway's subnet ${subnet}`,
          });
      }
      if (isIpv4(first) && isIpv4(last)) {
        if (ipv4ToNumber(first) > ipv4ToNumber(last))
          ctx.addIssue({
            code: "custom",
            path: ["dhcp", "pool"],
            message: `${show(dhcp.pool)} ends before it starts`,
          });
        else if (
          ipv4ToNumber(iface.address) >= ipv4ToNumber(first) &&
          ipv4ToNumber(iface.address) <= ipv4ToNumber(last)
        )
          ctx.addIssue({
            code: "custom",
            path: ["dhcp", "pool"],
            message: `${show(dhcp.pool)} contains the gateway address ${iface.address}`,
          });
      }
    }
    for (const [l, i] of leases) {
      if (!isStr(l.address) || !isIpv4(l.address)) continue;
      if (!ipv4InNetwork(l.address, subnet) || isNetworkOrBroadcast(l.address, subnet))
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "leases", i, "address"],
          message: `${show(l.address)} is outside the gateway's subnet ${subnet}`,
        });
      if (l.address === iface.address)
        ctx.addIssue({
          code: "custom",
          path: ["dhcp", "leases", i, "address"],
          message: `${show(l.address)} is the switch's own address`,
        });
    }
  }, evenIfInvalid);
export type MikrotikConfig = z.infer<typeof mikrotikSchema>;
