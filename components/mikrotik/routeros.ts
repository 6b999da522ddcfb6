/**
 * RouterOS 7 CLI text for the cache VLAN on the office switch: a typed model of the objects, their
 * natural keys, and the scripts that apply, tear down, back up and arm/disarm the dead-man switch.
 *
 * Rules the scripts keep:
 * - every object carries the marker comment, and scripts only ever modify marked objects; an
 *   unmarked object in the way (a port in the default bridge, a pool of the same name) stops the
 *   apply with an error naming it — we never take over what someone else configured;
 * - every `add` is guarded by a `find` on the object's natural key: applying twice changes nothing;
 * - the order keeps the management path alive: the management port never joins the bridge, and
 *   vlan-filtering is turned on last (RouterOS: "by enabling vlan-filtering you will be filtering
 *   out traffic destined to the CPU").
 */
import { hasControlChar, type MikrotikConfig } from "../../config/schema";

/** A RouterOS double-quoted string: `\`, `"`, `$` and `?` escaped; control characters refused. */
export function rosQuote(value: string): string {
  if (hasControlChar(value)) {
    throw new Error(
      `${JSON.stringify(value)} contains a control character; it cannot be written to RouterOS`,
    );
  }
  return `"${value.replace(/[\\"$?]/g, (c) => `\\${c}`)}"`;
}

/** RouterOS prints these on failure; its SSH exit status stays 0 (community.routeros). */
export const ROUTEROS_ERROR_PATTERNS = [
  "failure:",
  "bad command name",
  "syntax error",
  "expected end of command",
  "expected command name",
  "no such item",
  "invalid value",
] as const;

/** The first output line that reports a RouterOS error, or undefined for clean output. */
export function findRouterosError(output: string): string | undefined {
  return output.split(/\r?\n/).find((line) => ROUTEROS_ERROR_PATTERNS.some((p) => line.includes(p)));
}

export type Attrs = Record<string, string | number | boolean>;

/** One object the program manages: its menu, natural key and desired attributes. */
export interface RosObject {
  menu: string;
  /** Attributes that identify the object (the `find` condition). */
  key: Attrs;
  /** Attributes to set (in addition to the key). */
  set: Attrs;
  /** What to call it in an error message. */
  label: string;
}

function value(v: string | number | boolean): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "yes" : "no";
  return rosQuote(v);
}

const attrs = (a: Attrs) =>
  Object.entries(a)
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(" ");
const where = (a: Attrs) =>
  Object.entries(a)
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(" && ");

export interface SwitchModel {
  marker: string;
  objects: RosObject[];
  bridge: string;
  /** Global settings (not objects): the DNS server. */
  dnsSettings: Attrs;
}

export function vlanInterfaceName(m: MikrotikConfig): string {
  return `${m.bridge}-vlan${m.vlanId}`;
}

/** The objects, in apply order (teardown removes them in reverse). */
export function switchModel(m: MikrotikConfig, marker: string): SwitchModel {
  const [address, prefix] = m.address.split("/") as [string, string];
  const network = networkOf(address, Number(prefix));
  const vlanIf = vlanInterfaceName(m);
  const pool = `${m.bridge}-pool`;
  const dhcp = `${m.bridge}-dhcp`;
  const objects: RosObject[] = [
    {
      menu: "/interface bridge",
      key: { name: m.bridge },
      set: { "vlan-filtering": false },
      label: `bridge ${m.bridge}`,
    },
    ...m.accessPorts.map((port) => ({
      menu: "/interface bridge port",
      key: { interface: port },
      set: { bridge: m.bridge, pvid: m.vlanId, "frame-types": "admit-only-untagged-and-priority-tagged" },
      label: `bridge port ${port}`,
    })),
    {
      menu: "/interface bridge vlan",
      key: { bridge: m.bridge, "vlan-ids": m.vlanId },
      set: { tagged: m.bridge, untagged: m.accessPorts.join(",") },
      label: `bridge vlan ${m.vlanId} on ${m.bridge}`,
    },
    {
      menu: "/interface vlan",
      key: { name: vlanIf },
      set: { interface: m.bridge, "vlan-id": m.vlanId },
      label: `vlan interface ${vlanIf}`,
    },
    {
      menu: "/ip address",
      key: { interface: vlanIf },
      set: { address: m.address },
      label: `address on ${vlanIf}`,
    },
    { menu: "/ip pool", key: { name: pool }, set: { ranges: m.dhcp.pool }, label: `ip pool ${pool}` },
    {
      menu: "/ip dhcp-server",
      key: { name: dhcp },
      set: { interface: vlanIf, "address-pool": pool, "lease-time": m.dhcp.leaseTime, disabled: false },
      label: `dhcp server ${dhcp}`,
    },
    {
      menu: "/ip dhcp-server network",
      key: { address: network },
      set: { gateway: address, "dns-server": address, domain: m.dhcp.domain },
      label: `dhcp network ${network}`,
    },
    ...m.dhcp.leases.map((l) => ({
      menu: "/ip dhcp-server lease",
      key: { "mac-address": l.mac },
      set: { address: l.address, server: dhcp },
      label: `dhcp lease ${l.mac}`,
    })),
    ...m.dns.records.map((r) => ({
      menu: "/ip dns static",
      key: { name: r.name },
      set: { address: r.address, type: "A" },
      label: `dns record ${r.name}`,
    })),
  ];
  return {
    marker,
    objects,
    bridge: m.bridge,
    dnsSettings: { "allow-remote-requests": true, servers: m.dns.upstream.join(",") },
  };
}

function networkOf(address: string, prefix: number): string {
  const n = address.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - prefix);
  const base = Math.floor(n / size) * size;
  return `${[24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join(".")}/${prefix}`;
}

function header(marker: string, what: string): string[] {
  return [`# ${marker}: ${what}. Generated by attic-infra (components/mikrotik/routeros.ts).`];
}

/** Add when missing, set when ours; stop when someone else's object holds the key. */
function ensure(o: RosObject, marker: string): string[] {
  const ours = where({ ...o.key, comment: marker });
  return [
    `:if ([:len [${o.menu} find where ${where(o.key)} && comment!=${rosQuote(marker)}]] > 0) do={:error ${rosQuote(
      `failure: attic-infra: ${o.label} exists and is not managed by attic-infra; remove or rename it, then apply again`,
    )}}`,
    `:if ([:len [${o.menu} find where ${ours}]] = 0) do={${o.menu} add ${attrs({ ...o.key, ...o.set, comment: marker })}} else={${o.menu} set [find where ${ours}] ${attrs(o.set)}}`,
  ];
}

/** Prints the marked objects, for drift on refresh. */
function exportMarked(model: SwitchModel): string[] {
  const menus = [...new Set(model.objects.map((o) => o.menu))];
  return menus.map((menu) => `${menu} export terse where comment=${rosQuote(model.marker)}`);
}

export function applyScript(model: SwitchModel): string {
  const lines = [
    ...header(model.marker, "apply the cache VLAN, DHCP and DNS"),
    "{",
    ...model.objects.flatMap((o) => ensure(o, model.marker)),
    `/ip dns set ${attrs(model.dnsSettings)}`,
    "# Last: filtering starts only once every port, the bridge VLAN and the gateway are in place.",
    `/interface bridge set [find where name=${rosQuote(model.bridge)} && comment=${rosQuote(model.marker)}] vlan-filtering=yes`,
    `:put ${rosQuote("attic-infra: applied")}`,
    "}",
    ...exportMarked(model),
  ];
  return `${lines.join("\n")}\n`;
}

export function teardownScript(model: SwitchModel): string {
  const menus = [...new Set(model.objects.map((o) => o.menu))].reverse();
  const lines = [
    ...header(model.marker, "remove the cache VLAN, DHCP and DNS (only marked objects)"),
    "{",
    `/system scheduler remove [find where name=${rosQuote(ROLLBACK_SCHEDULER)} && comment=${rosQuote(model.marker)}]`,
    "# First: no filtering while ports leave the bridge.",
    `/interface bridge set [find where name=${rosQuote(model.bridge)} && comment=${rosQuote(model.marker)}] vlan-filtering=no`,
    ...menus.map((menu) => `${menu} remove [find where comment=${rosQuote(model.marker)}]`),
    `:put ${rosQuote("attic-infra: removed")}`,
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

export const ROLLBACK_SCHEDULER = "attic-infra-rollback";

/** Before any change: a binary backup (what the dead-man restores) and a readable export. */
export function backupScript(marker: string, name: string): string {
  return `${[
    ...header(marker, "back up the switch before changing it"),
    `/system backup save name=${rosQuote(name)} dont-encrypt=yes`,
    `/export file=${rosQuote(name)}`,
    `:put ${rosQuote(`attic-infra: saved ${name}.backup and ${name}.rsc`)}`,
  ].join("\n")}\n`;
}

/**
 * The dead-man switch: a scheduler entry that restores the backup unless the confirm step removes
 * it. Its first run only arms it and the second restores, so the restore comes `minutes` to
 * 2 × `minutes` after arming, whether RouterOS first runs an interval entry at once or after one
 * interval.
 */
export function armScript(marker: string, backupName: string, minutes: number): string {
  const onEvent = `:global atticInfraArmed; :if ($atticInfraArmed = true) do={/system backup load name=${rosQuote(
    `${backupName}.backup`,
  )} password=""} else={:set atticInfraArmed true}`;
  return `${[
    ...header(marker, "arm the dead-man switch"),
    `/system scheduler remove [find where name=${rosQuote(ROLLBACK_SCHEDULER)} && comment=${rosQuote(marker)}]`,
    ":global atticInfraArmed false",
    `/system scheduler add name=${rosQuote(ROLLBACK_SCHEDULER)} interval=${minutes}m comment=${rosQuote(marker)} on-event=${rosQuote(onEvent)}`,
    `:put ${rosQuote(`attic-infra: armed; the switch restores ${backupName}.backup unless confirmed`)}`,
  ].join("\n")}\n`;
}

/** From a new connection: the switch is still reachable and configured, so disarm. */
export function confirmScript(model: SwitchModel): string {
  const marker = rosQuote(model.marker);
  return `${[
    ...header(model.marker, "confirm from a new connection and disarm the dead-man switch"),
    "{",
    `:if ([:len [/system scheduler find where name=${rosQuote(ROLLBACK_SCHEDULER)} && comment=${marker}]] = 0) do={:error ${rosQuote(
      "failure: attic-infra: no armed rollback: the switch may already have restored its backup",
    )}}`,
    `:if ([:len [/interface bridge find where name=${rosQuote(model.bridge)} && comment=${marker} && vlan-filtering=yes]] = 0) do={:error ${rosQuote(
      "failure: attic-infra: the applied configuration is not in place",
    )}}`,
    `/system scheduler remove [find where name=${rosQuote(ROLLBACK_SCHEDULER)} && comment=${marker}]`,
    `:put ${rosQuote("attic-infra: confirmed; rollback disarmed")}`,
    "}",
  ].join("\n")}\n`;
}

/** Connectivity and identity, before anything else runs (and the holder of the teardown). */
export function checkScript(marker: string): string {
  return `${[...header(marker, "check the switch"), "/system resource print", "/system routerboard print"].join("\n")}\n`;
}
