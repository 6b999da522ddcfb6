import ipaddr from "ipaddr.js";

export interface Ipv4Interface {
  /** The host address, e.g. 10.0.0.1 */
  address: string;
  prefixLength: number;
  /** The network in CIDR form, e.g. 10.0.0.0/24 */
  network: string;
}

export function isIpv4(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text);
}

export function isIp(text: string): boolean {
  return ipaddr.isValid(text);
}

/** Parses "10.0.0.1/24" (an address on a network), or returns undefined. */
export function parseIpv4Interface(text: string): Ipv4Interface | undefined {
  const [addr, prefix, ...rest] = text.split("/");
  if (rest.length > 0 || addr === undefined || prefix === undefined || !isIpv4(addr)) return undefined;
  if (!/^\d{1,2}$/.test(prefix) || Number(prefix) > 32) return undefined;
  const prefixLength = Number(prefix);
  const network = ipaddr.IPv4.networkAddressFromCIDR(text).toString();
  return { address: addr, prefixLength, network: `${network}/${prefixLength}` };
}

/** Parses "10.60.0.0/16" (a network, no host bits set), or returns undefined. */
export function parseIpv4Network(text: string): { network: string; prefixLength: number } | undefined {
  const parsed = parseIpv4Interface(text);
  if (!parsed || parsed.network !== text) return undefined;
  return { network: parsed.address, prefixLength: parsed.prefixLength };
}

export function ipv4InNetwork(address: string, cidr: string): boolean {
  if (!isIpv4(address)) return false;
  return ipaddr.IPv4.parse(address).match(ipaddr.IPv4.parseCIDR(cidr));
}

export function ipv4ToNumber(address: string): number {
  return ipaddr.IPv4.parse(address).octets.reduce((n, o) => n * 256 + o, 0);
}

export function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** True for the network and broadcast addresses of a subnet (not usable for hosts). */
export function isNetworkOrBroadcast(address: string, cidr: string): boolean {
  const [net, prefix] = cidr.split("/");
  const size = 2 ** (32 - Number(prefix));
  if (size <= 2) return false;
  const base = ipv4ToNumber(net!);
  const n = ipv4ToNumber(address);
  return n === base || n === base + size - 1;
}

/**
 * Splits a network into `count` equal subnets of the given prefix length, starting at `offset`
 * subnets from its base. Used to carve public and private subnets out of the VPC CIDR.
 */
export function subnetCidrs(cidr: string, newPrefix: number, offset: number, count: number): string[] {
  const [net, prefix] = cidr.split("/");
  if (newPrefix < Number(prefix)) throw new Error(`cannot split ${cidr} into /${newPrefix} subnets`);
  const size = 2 ** (32 - newPrefix);
  const base = ipv4ToNumber(net!);
  const available = 2 ** (newPrefix - Number(prefix));
  if (offset + count > available) throw new Error(`${cidr} has room for ${available} /${newPrefix} subnets`);
  return Array.from({ length: count }, (_, i) => `${numberToIpv4(base + (offset + i) * size)}/${newPrefix}`);
}

/**
 * Parses an IPv4 or IPv6 network in CIDR form ("203.0.113.0/24", "2001:db8::/48") with no host bits
 * set, or returns undefined.
 */
export function parseCidr(text: string): { family: 4 | 6; prefixLength: number } | undefined {
  if (!ipaddr.isValidCIDR(text)) return undefined;
  const [addr, prefixLength] = ipaddr.parseCIDR(text);
  const family = addr.kind() === "ipv4" ? 4 : 6;
  if (family === 4 && !isIpv4(text.split("/")[0]!)) return undefined;
  const network =
    family === 4 ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
  if (network.toString() !== addr.toString()) return undefined;
  return { family, prefixLength };
}
