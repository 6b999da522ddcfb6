/**
 * RouterOS 7 CLI text for the cache VLAN on the office switch: a typed model of the objects, their
 * natural keys, and the scripts that prepare (refuse an unconfirmed earlier apply, back up, arm the
 * dead-man switch), apply, confirm and tear down. Each script is uploaded and run with `/import`
 * (ssh.ts), so it may span lines and use `{}` blocks; each ends by printing `attic-infra: <step>
 * done`, the line the transport requires.
 *
 * Rules the scripts keep:
 * - two phases: every guard runs before the first change, so a refusal leaves the switch as it was;
 * - every object carries the marker comment, and scripts only ever change marked objects; an
 *   unmarked, non-dynamic object in the way stops the apply with a sentence naming it. Dynamic
 *   entries (no comment: the bridge VLAN entries RouterOS derives from PVIDs, DHCP clients' leases)
 *   never stop it; a dynamic lease for a configured MAC is made static and marked;
 * - every `add` is guarded by a `find` on the object's natural key, and marked objects that are no
 *   longer in the config are removed: applying twice changes nothing, applying less removes the rest;
 * - the management path survives: the management port is never changed, vlan-filtering is turned on
 *   only after the management port is checked to reach the CPU untagged (its PVID is the bridge's),
 *   and never toggled when already on (a CRS3xx resets its switch chip when it changes);
 * - what is global on the switch (`/ip dns` settings, the offloaded bridge's vlan-filtering) is
 *   recorded on the first apply, on the switch, and restored by the teardown.
 */
import { hasControlChar } from "../../config/fields";
import type { MikrotikConfig } from "../../config/schema";

/** A RouterOS double-quoted string: `\`, `"`, `$` and `?` escaped; control characters refused. */
export function rosQuote(value: string): string {
  if (hasControlChar(value)) {
    throw new Error(
      `${JSON.stringify(value)} contains a control character; it cannot be written to RouterOS`,
    );
  }
  return `"${value.replace(/[\\"$?]/g, (c) => `\\${c}`)}"`;
}

/**
 * RouterOS prints these on failure; its SSH exit status stays 0 (community.routeros,
 * terraform-provider-routeros, eden3d/ansible-mikrotik-utils).
 */
export const ROUTEROS_ERROR_PATTERNS = [
  "failure:",
  "bad command name",
  "syntax error",
  "expected end of command",
  "expected command name",
  "no such item",
  "invalid value",
  "input does not match any value of",
  "missing value(s) of argument(s)",
  "ambiguous value",
  "not enough permissions",
  "Script Error",
] as const;

/** The first output line that reports a RouterOS error, or undefined for clean output. */
export function findRouterosError(output: string): string | undefined {
  return output.split(/\r?\n/).find((line) => ROUTEROS_ERROR_PATTERNS.some((p) => line.includes(p)));
}

/** The line each script prints last; the transport treats a step without it as failed. */
export const doneLine = (step: string) => `attic-infra: ${step} done`;

/** The oldest RouterOS the scripts run on: `export … where` exists from 7.13. */
export const MIN_ROUTEROS = { major: 7, minor: 13 } as const;

export type Attrs = Record<string, string | number | boolean>;

/** One object the program manages: its menu, natural key and desired attributes. */
export interface RosObject {
  menu: string;
  /** Attributes that identify the object (the `find` condition). */
  key: Attrs;
  /** Attributes to set (in addition to the key). */
  set: Attrs;
  /** Attributes given only when the object is created (a bridge starts without filtering). */
  create?: Attrs;
  /** What to call it in an error message; absent: someone else's object never stands in its way. */
  label?: string;
  /** The RouterOS command that clears the way, for the error message. */
  clear?: string;
  /** Firewall rules go ahead of every rule that is not ours. */
  placeFirst?: boolean;
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
  ownBridge: boolean;
  managementPort: string;
  vlanInterface: string;
  /** Global settings (not objects): the DNS server. */
  dnsSettings: Attrs;
  rollbackMinutes: number;
}

export const vlanInterfaceName = (m: MikrotikConfig) => `attic-vlan${m.vlanId}`;
export const ROLLBACK_SCHEDULER = "attic-infra-rollback";
/** The `/ip dns` settings as they were before the first apply (`export verbose`), on the switch. */
export const DNS_BEFORE_FILE = "attic-infra-dns-before";
/** A marked script that turns vlan-filtering off again, if the first apply turned it on. */
export const FILTERING_BEFORE_SCRIPT = "attic-infra-vlan-filtering-before";
/** Stands for the backup's name; the transport replaces it with attic-infra-<UTC time>. */
export const BACKUP_PLACEHOLDER = "@BACKUP@";

/** The objects, in apply order (teardown removes them in reverse). */
export function switchModel(m: MikrotikConfig, marker: string): SwitchModel {
  const [address, prefix] = m.address.split("/") as [string, string];
  const network = networkOf(address, Number(prefix));
  const vlanIf = vlanInterfaceName(m);
  const pool = "attic-pool";
  const dhcp = "attic-dhcp";
  const dnsRule = (protocol: string, action: string, inInterface?: string): RosObject => ({
    menu: "/ip firewall filter",
    key: {
      chain: "input",
      protocol,
      "dst-port": "53",
      action,
      ...(inInterface ? { "in-interface": inInterface } : {}),
    },
    set: {},
    placeFirst: true,
  });
  const objects: RosObject[] = [
    ...(m.ownBridge
      ? [
          {
            menu: "/interface bridge",
            key: { name: m.bridge },
            set: {},
            create: { "vlan-filtering": false },
            label: `bridge ${m.bridge}`,
            clear: `rename it or set attic-infra:mikrotik.ownBridge to false to use it as it is`,
          },
        ]
      : []),
    ...m.accessPorts.map((port) => ({
      menu: "/interface bridge port",
      key: { interface: port },
      set: { bridge: m.bridge, pvid: m.vlanId, "frame-types": "admit-only-untagged-and-priority-tagged" },
      label: `bridge port ${port}`,
      clear: `take it out of its bridge: /interface bridge port remove [find where interface=${port}]`,
    })),
    {
      menu: "/interface bridge vlan",
      key: { bridge: m.bridge, "vlan-ids": m.vlanId },
      set: { tagged: m.bridge, untagged: m.accessPorts.join(",") },
      label: `bridge vlan ${m.vlanId} on ${m.bridge}`,
      clear: "remove it or choose another attic-infra:mikrotik.vlanId",
    },
    {
      menu: "/interface vlan",
      key: { name: vlanIf },
      set: { interface: m.bridge, "vlan-id": m.vlanId },
      label: `vlan interface ${vlanIf}`,
      clear: "remove or rename it",
    },
    {
      menu: "/ip address",
      key: { interface: vlanIf },
      set: { address: m.address },
      label: `address on ${vlanIf}`,
      clear: "remove it",
    },
    {
      menu: "/ip pool",
      key: { name: pool },
      set: { ranges: m.dhcp.pool },
      label: `ip pool ${pool}`,
      clear: "remove or rename it",
    },
    {
      menu: "/ip dhcp-server",
      key: { name: dhcp },
      set: { interface: vlanIf, "address-pool": pool, "lease-time": m.dhcp.leaseTime, disabled: false },
      label: `dhcp server ${dhcp}`,
      clear: "remove or rename it",
    },
    {
      menu: "/ip dhcp-server network",
      key: { address: network },
      set: { gateway: address, "dns-server": address, domain: m.dhcp.domain },
      label: `dhcp network ${network}`,
      clear: "remove it",
    },
    ...m.dhcp.leases.map((l) => ({
      menu: "/ip dhcp-server lease",
      key: { "mac-address": l.mac },
      set: { address: l.address, server: dhcp },
      label: `static dhcp lease ${l.mac}`,
      clear: "remove it (a dynamic lease is converted, a static one someone made is not taken over)",
    })),
    ...m.dns.records.map((r) => ({
      menu: "/ip dns static",
      key: { name: r.name },
      set: { address: r.address, type: "A" },
      label: `dns record ${r.name}`,
      clear: "remove it",
    })),
    // Recursive DNS is global on RouterOS: answer it on the cache VLAN only.
    dnsRule("udp", "accept", vlanIf),
    dnsRule("tcp", "accept", vlanIf),
    dnsRule("udp", "drop"),
    dnsRule("tcp", "drop"),
  ];
  return {
    marker,
    objects,
    bridge: m.bridge,
    ownBridge: m.ownBridge,
    managementPort: m.managementPort,
    vlanInterface: vlanIf,
    dnsSettings: { "allow-remote-requests": true, servers: m.dns.upstream.join(",") },
    rollbackMinutes: m.rollbackMinutes,
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

const fail = (sentence: string) => `:error ${rosQuote(`failure: attic-infra: ${sentence}`)}`;
const menusOf = (model: SwitchModel) => [...new Set(model.objects.map((o) => o.menu))];
/** Every menu the program may have marked objects in, in apply order, whatever the config lists now. */
const MANAGED_MENUS = [
  "/interface bridge",
  "/interface bridge port",
  "/interface bridge vlan",
  "/interface vlan",
  "/ip address",
  "/ip pool",
  "/ip dhcp-server",
  "/ip dhcp-server network",
  "/ip dhcp-server lease",
  "/ip dns static",
  "/ip firewall filter",
];
/** A bridge of our own is removed only by the teardown: it still holds the ports at apply time. */
const staleMenus = (model: SwitchModel) =>
  MANAGED_MENUS.filter((m) => m !== "/interface bridge" || model.ownBridge);
const bridgeId = (model: SwitchModel) => `[/interface bridge find where name=${rosQuote(model.bridge)}]`;

/** A refusal in phase 1: nothing changed, so the dead-man armed for this apply is disarmed too. */
const refuse = (marker: string, sentence: string) =>
  `/system scheduler remove [find where name=${rosQuote(ROLLBACK_SCHEDULER)} && comment=${rosQuote(marker)}]; ${fail(sentence)}`;

/** Phase 1: someone else's (static) object holds the key → stop, before anything changed. */
function guard(o: RosObject, marker: string): string[] {
  if (!o.label) return [];
  return [
    `:if ([:len [${o.menu} find where ${where(o.key)} && dynamic=no && comment!=${rosQuote(marker)}]] > 0) do={${refuse(
      marker,
      `${o.label} exists and is not managed by attic-infra; ${o.clear}, then run pulumi up again`,
    )}}`,
  ];
}

/**
 * Phase 2: add when missing, set when ours. A firewall rule goes ahead of every input rule that is
 * not ours and of our rules that come after it (`later`), so ours keep their order among themselves.
 */
function ensure(o: RosObject, marker: string, later: RosObject[] = []): string {
  const ours = where({ ...o.key, comment: marker });
  const add = `${o.menu} add ${attrs({ ...o.key, ...o.create, ...o.set, comment: marker })}`;
  const ahead = [
    `comment!=${rosQuote(marker)}`,
    ...later.map((l) => `(${where({ ...l.key, comment: marker })})`),
  ];
  const others = `[${o.menu} find where chain=input && (${ahead.join(" || ")})]`;
  const create = o.placeFirst
    ? `:if ([:len ${others}] = 0) do={${add}} else={${add} place-before=[:pick ${others} 0]}`
    : add;
  const update = Object.keys(o.set).length
    ? ` else={${o.menu} set [find where ${ours}] ${attrs(o.set)}}`
    : "";
  return `:if ([:len [${o.menu} find where ${ours}]] = 0) do={${create}}${update}`;
}

/** Marked objects of a menu that the config no longer lists. */
function removeStale(menu: string, objects: RosObject[], marker: string): string {
  const wanted = objects.filter((o) => o.menu === menu).map((o) => `(${where(o.key)})`);
  const keep = wanted.length ? ` && !(${wanted.join(" || ")})` : "";
  return `${menu} remove [find where comment=${rosQuote(marker)}${keep}]`;
}

export function applyScript(model: SwitchModel): string {
  const M = rosQuote(model.marker);
  const bridge = rosQuote(model.bridge);
  const mgmt = rosQuote(model.managementPort);
  const filteringOff = `[/interface bridge get ${bridgeId(model)} vlan-filtering] = false`;
  const guards = [
    ...(model.ownBridge
      ? []
      : [
          `:if ([:len ${bridgeId(model)}] = 0) do={${refuse(
            model.marker,
            `the switch has no bridge ${model.bridge}; set attic-infra:mikrotik.bridge to its hardware-offloaded bridge (/interface bridge port print shows it: the ports flagged H)`,
          )}}`,
          // With filtering on, untagged frames from the management port reach the CPU only if its
          // PVID is the bridge's own (the bridge is then an untagged member of that VLAN).
          `:if ((${filteringOff}) && ([:len [/interface bridge port find where bridge=${bridge} && interface=${mgmt} && (pvid!=[/interface bridge get ${bridgeId(model)} pvid] || frame-types="admit-only-vlan-tagged")]] > 0)) do={${refuse(
            model.marker,
            `turning vlan-filtering on on ${model.bridge} would cut the management path: the management port ${model.managementPort} must admit untagged frames with the bridge's PVID; fix its bridge port, then run pulumi up again`,
          )}}`,
        ]),
    ...model.objects.flatMap((o) => guard(o, model.marker)),
  ];
  const leases = model.objects.filter((o) => o.menu === "/ip dhcp-server lease");
  const changes = [
    "# Marked objects the config no longer lists.",
    ...staleMenus(model)
      .reverse()
      .map((menu) => removeStale(menu, model.objects, model.marker)),
    ...leases.map(
      (o) =>
        `:if ([:len [/ip dhcp-server lease find where ${where({ ...o.key, comment: model.marker })}]] = 0) do={:foreach i in=[/ip dhcp-server lease find where ${where(o.key)} && dynamic=yes] do={/ip dhcp-server lease make-static $i; /ip dhcp-server lease set $i comment=${M}}}`,
    ),
    ...model.objects.map((o, i) =>
      ensure(o, model.marker, o.placeFirst ? model.objects.slice(i + 1).filter((l) => l.placeFirst) : []),
    ),
    "# The switch's own DNS settings, as they were before the first apply; the teardown imports them.",
    `:if ([:len [/file find where name=${rosQuote(`${DNS_BEFORE_FILE}.rsc`)}]] = 0) do={/ip dns export verbose file=${rosQuote(DNS_BEFORE_FILE)}}`,
    `/ip dns set ${attrs(model.dnsSettings)}`,
    "# Last: filtering starts once every port, the bridge VLAN and the gateway are in place; never toggled.",
    model.ownBridge
      ? `/interface bridge set [find where name=${bridge} && comment=${M} && vlan-filtering=no] vlan-filtering=yes`
      : `:if (${filteringOff}) do={:if ([:len [/system script find where name=${rosQuote(FILTERING_BEFORE_SCRIPT)}]] = 0) do={/system script add name=${rosQuote(
          FILTERING_BEFORE_SCRIPT,
        )} comment=${M} source=${rosQuote(`/interface bridge set [find where name=${rosQuote(model.bridge)}] vlan-filtering=no`)}}; /interface bridge set ${bridgeId(model)} vlan-filtering=yes}`,
  ];
  const lines = [
    ...header(model.marker, "apply the cache VLAN, DHCP and DNS"),
    "{",
    "# Phase 1: every guard, before any change.",
    ...guards,
    "# Phase 2: the changes.",
    ...changes,
    "# The marked objects as the switch has them (drift shows on refresh).",
    ...menusOf(model).map((menu) => `${menu} export terse where comment=${M}`),
    `:put ${rosQuote(doneLine("apply"))}`,
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

export function teardownScript(model: SwitchModel): string {
  const M = rosQuote(model.marker);
  const dnsFile = rosQuote(`${DNS_BEFORE_FILE}.rsc`);
  const lines = [
    ...header(
      model.marker,
      "remove the cache VLAN, DHCP and DNS (only marked objects) and restore what they changed",
    ),
    "{",
    `/system scheduler remove [find where name=${rosQuote(ROLLBACK_SCHEDULER)} && comment=${M}]`,
    "# First: no filtering while ports leave the bridge (on a shared bridge: only if we turned it on).",
    model.ownBridge
      ? `/interface bridge set [find where name=${rosQuote(model.bridge)} && comment=${M}] vlan-filtering=no`
      : `:if ([:len [/system script find where name=${rosQuote(FILTERING_BEFORE_SCRIPT)} && comment=${M}]] > 0) do={/system script run [find where name=${rosQuote(FILTERING_BEFORE_SCRIPT)} && comment=${M}]}`,
    ...[...MANAGED_MENUS, "/system script"]
      .reverse()
      .map((menu) => `${menu} remove [find where comment=${M}]`),
    `:if ([:len [/file find where name=${dnsFile}]] > 0) do={/import file-name=${dnsFile}; /file remove [find where name=${dnsFile}]}`,
    `:put ${rosQuote(doneLine("teardown"))}`,
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * Before any change: refuse an unconfirmed earlier apply, save a binary backup (what the dead-man
 * restores) and a readable export, and arm the dead-man switch: a scheduler entry that restores the
 * backup unless the confirm step removes it. Its first run only arms it and the second restores,
 * so the restore comes `minutes` to 2 × `minutes` after arming, whether RouterOS first runs an
 * interval entry at once or after one interval.
 */
export function prepareScript(model: SwitchModel): string {
  const M = rosQuote(model.marker);
  const backup = BACKUP_PLACEHOLDER;
  const onEvent = `:global atticInfraArmed; :if ($atticInfraArmed = true) do={/system backup load name=${rosQuote(
    `${backup}.backup`,
  )} password=""} else={:set atticInfraArmed true}`;
  return `${[
    ...header(model.marker, "refuse an unconfirmed apply, back up the switch, arm the dead-man switch"),
    "{",
    `:if ([:len [/system scheduler find where name=${rosQuote(ROLLBACK_SCHEDULER)}]] > 0) do={${fail(
      `an earlier apply was never confirmed: the scheduler entry ${ROLLBACK_SCHEDULER} is armed and will restore the backup taken before it within ${2 * model.rollbackMinutes} minutes. Wait until it has, or, if the switch is as it should be, remove it (/system scheduler remove ${ROLLBACK_SCHEDULER}); then run pulumi up again`,
    )}}`,
    `/system backup save name=${rosQuote(backup)} dont-encrypt=yes`,
    `/export file=${rosQuote(backup)}`,
    ":global atticInfraArmed false",
    `/system scheduler add name=${rosQuote(ROLLBACK_SCHEDULER)} interval=${model.rollbackMinutes}m comment=${M} on-event=${rosQuote(onEvent)}`,
    "# The transport keeps the newest three of these and removes the rest.",
    `:foreach f in=[/file find where name~${rosQuote("^attic-infra-[0-9]+-[0-9]+\\.(backup|rsc)$")}] do={:put ("attic-infra: backup file " . [/file get $f name])}`,
    `:put ${rosQuote(doneLine("prepare"))}`,
    "}",
  ].join("\n")}\n`;
}

/** From a new connection: the switch is still reachable and configured, so disarm. */
export function confirmScript(model: SwitchModel): string {
  const M = rosQuote(model.marker);
  const scheduler = `[/system scheduler find where name=${rosQuote(ROLLBACK_SCHEDULER)} && comment=${M}]`;
  return `${[
    ...header(model.marker, "confirm from a new connection and disarm the dead-man switch"),
    "{",
    `:if ([:len ${scheduler}] = 0) do={${fail(
      "the dead-man switch is no longer armed: the switch has restored its backup (or someone removed the entry); run pulumi up again to redo backup, arm, apply and confirm",
    )}}`,
    `:if (([:len [/interface vlan find where name=${rosQuote(model.vlanInterface)} && comment=${M}]] = 0) || ([:len [/interface bridge find where name=${rosQuote(model.bridge)} && vlan-filtering=yes]] = 0)) do={${fail(
      "the applied configuration is not in place; the dead-man switch stays armed and will restore the backup",
    )}}`,
    `/system scheduler remove ${scheduler}`,
    `:put ${rosQuote(doneLine("confirm"))}`,
    "}",
  ].join("\n")}\n`;
}

/** Connectivity, identity and the upload path, before anything else runs. */
export function checkScript(marker: string): string {
  return `${[...header(marker, "check the switch"), "/system resource print", `:put ${rosQuote(doneLine("check"))}`].join("\n")}\n`;
}

/** One step of a bundle: the transport uploads and imports each in turn. */
export interface Step {
  name: string;
  script: string;
  /** Run over a new SSH connection (confirm: proves the switch still accepts connections). */
  newConnection?: boolean;
}

/** The steps as one text for the transport's stdin: a `#>attic-infra step` line before each. */
export function bundle(steps: Step[]): string {
  return steps
    .map((s) => `#>attic-infra step ${s.name}${s.newConnection ? " new-connection" : ""}\n${s.script}`)
    .join("");
}
