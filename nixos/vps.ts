/**
 * The generated NixOS module for a public NixOS host (`attic-infra/atticd.nix` on a VPS): nixpkgs'
 * `services.atticd` on loopback behind a TLS proxy (Caddy or NGINX, Let's Encrypt), metadata in the
 * host's PostgreSQL (peer authentication over the Unix socket, no password anywhere) or SQLite,
 * daily dumps kept for a number of days and copied to the bucket, and a firewall that opens 80/443
 * and SSH only from `sshFrom`. Nothing secret is in it: it lands in the world-readable store.
 *
 * Option names follow nixpkgs (services.atticd, services.caddy, services.nginx + security.acme,
 * services.postgresql, networking.firewall, services.openssh), NixOS 24.11 and later.
 */
import type { AtticSettings } from "../components/attic/settings";
import { readScript, shellHeader } from "../components/shellScript";
import { ENVIRONMENT_FILE, SQLITE_DATABASE } from "./shared";
import { type NixValue, nixCall, nixExpr, toNix } from "./nix";

export type Proxy = "caddy" | "nginx";

export interface DumpTarget {
  bucket: string;
  region: string;
  /** S3-compatible endpoint (Backblaze B2: https://s3.<region>.backblazeb2.com). */
  endpoint?: string;
  /** Key prefix for the dumps, ending with "/", e.g. attic-infra/db-dumps/. */
  prefix: string;
}

export interface BackupOptions {
  /** Where dumps are written on the host (outside atticd's state directory). */
  dir: string;
  /** Dumps older than this many days are deleted, on the host and under the bucket prefix. */
  keepDays: number;
  /** Copy every dump off the host (S3 storage only). */
  copyTo?: DumpTarget;
}

export interface VpsModuleOptions {
  settings: AtticSettings;
  domain: string;
  acmeEmail: string;
  proxy: Proxy;
  /** The SSH port the deploy connects to: the only one opened to `sshFrom`. */
  sshPort: number;
  /** IPv4 and IPv6 networks (CIDR) that may reach SSH. */
  sshFrom: string[];
  upload: {
    /** Largest request body (one NAR upload) the proxy accepts, in GiB. */
    maxBodyGiB: number;
    /** How long the proxy waits on a silent upload or response, in seconds. */
    timeoutSeconds: number;
  };
  backup: BackupOptions;
  /** Shown in the header: which stack wrote the file. */
  stack: string;
}

/**
 * The PostgreSQL database, role and OS user: one name, so peer authentication maps them 1:1. The
 * dump scripts (vps-dump.sh, vps-dump-before-upgrade.sh) name it too.
 */
export const VPS_DB = "atticd";

/** atticd's loopback address (`listen`, e.g. 127.0.0.1:8080): what the proxy forwards to. */
export const upstream = (settings: AtticSettings): string => settings.listen;

export function isIpv6Cidr(cidr: string): boolean {
  return cidr.includes(":");
}

/**
 * Caddy: automatic HTTPS for the site address (Let's Encrypt, HTTP→HTTPS redirect). reverse_proxy
 * passes the client's Host unchanged and streams request bodies (no buffering unless asked);
 * flush_interval -1 streams responses. `read_timeout`/`write_timeout` bound the wait for the next
 * read or write, so a long upload that keeps moving is never cut.
 */
export function caddyVhostConfig(o: VpsModuleOptions): string {
  const t = `${o.upload.timeoutSeconds}s`;
  return [
    "request_body {",
    `  max_size ${o.upload.maxBodyGiB}GiB`,
    "}",
    `reverse_proxy ${upstream(o.settings)} {`,
    "  flush_interval -1",
    "  transport http {",
    `    read_timeout ${t}`,
    `    write_timeout ${t}`,
    "  }",
    "}",
    "",
  ].join("\n");
}

/**
 * NGINX, inside `location /`: nginx's 1 MiB default body cap and 60 s timeouts break NAR uploads
 * (attic issue #170). An upload has no Content-Length (chunked): nginx buffers a chunked body whatever
 * proxy_request_buffering says unless it proxies with HTTP/1.1.
 */
export function nginxLocationConfig(o: VpsModuleOptions): string {
  const t = `${o.upload.timeoutSeconds}s`;
  return [
    `client_max_body_size ${o.upload.maxBodyGiB}g;`,
    `client_body_timeout ${t};`,
    "proxy_http_version 1.1;",
    "proxy_request_buffering off;",
    `proxy_send_timeout ${t};`,
    `proxy_read_timeout ${t};`,
    "",
  ].join("\n");
}

/** iptables (the NixOS default backend): accept SSH from each network, before the final refuse rule. */
export function iptablesRules(sshPort: number, sshFrom: string[], family: 4 | 6): string {
  const tool = family === 4 ? "iptables" : "ip6tables";
  return sshFrom
    .filter((c) => isIpv6Cidr(c) === (family === 6))
    .map((c) => `${tool} -w -A nixos-fw -p tcp --dport ${sshPort} -s ${c} -j nixos-fw-accept\n`)
    .join("");
}

/** nftables (networking.nftables.enable): rules appended to the firewall's input-allow chain. */
export function nftablesRules(sshPort: number, sshFrom: string[]): string {
  const v4 = sshFrom.filter((c) => !isIpv6Cidr(c));
  const v6 = sshFrom.filter(isIpv6Cidr);
  return [
    ...(v4.length ? [`ip saddr { ${v4.join(", ")} } tcp dport ${sshPort} accept`] : []),
    ...(v6.length ? [`ip6 saddr { ${v6.join(", ")} } tcp dport ${sshPort} accept`] : []),
    "",
  ].join("\n");
}

/**
 * The daily dump (vps-dump.sh): PostgreSQL or SQLite, kept `keepDays` days, on the host and, with a
 * target, under the bucket prefix.
 */
export function dumpScript(o: {
  database: "postgresql" | "sqlite";
  backup: BackupOptions;
  sqlitePath?: string;
}): string {
  const t = o.backup.copyTo;
  return `${shellHeader([], {
    dir: o.backup.dir,
    keep_days: String(o.backup.keepDays),
    database: o.database,
    db: o.database === "sqlite" ? (o.sqlitePath ?? SQLITE_DATABASE) : "",
    dest: t ? `s3://${t.bucket}/${t.prefix}` : "",
    endpoint: t?.endpoint ?? "",
  })}${readScript(__dirname, "vps-dump.sh")}`;
}

/** Where the pre-upgrade dump records which atticd package the database was last dumped for. */
export const DUMPED_FOR_FILE = "/var/lib/attic-infra/atticd-package-dumped";

/**
 * Runs before every start of atticd (PostgreSQL only; vps-dump-before-upgrade.sh): when the atticd
 * package differs from the one the last dump was taken for, dump the database first. A new atticd
 * runs its migrations at start and has none to undo them; the deployer's rollback restores the
 * system, not a PostgreSQL schema, so this dump is the way back (docs/vps.md). Before atticd's first
 * start there is no database yet (or ensureDatabases has not run): nothing to dump.
 */
export function preUpgradeDumpScript(o: { dir: string; markerFile?: string }): string {
  return `${shellHeader([], { dir: o.dir, marker: o.markerFile ?? DUMPED_FOR_FILE })}${readScript(__dirname, "vps-dump-before-upgrade.sh")}`;
}

/** The attribute set the module evaluates to (config side), before rendering. */
export function vpsModuleConfig(o: VpsModuleOptions): Record<string, NixValue | undefined> {
  const postgres = o.settings.database.url.startsWith("postgresql:");
  const v6 = iptablesRules(o.sshPort, o.sshFrom, 6);
  // ip6tables exists only where the host has IPv6 (the firewall's own rules are guarded alike).
  const iptables = nixCall("lib.concatStrings", [
    iptablesRules(o.sshPort, o.sshFrom, 4),
    ...(v6 ? [nixCall("lib.optionalString", nixExpr("config.networking.enableIPv6"), v6)] : []),
  ]);
  const copy = o.backup.copyTo;

  const services: Record<string, NixValue> = {
    atticd: {
      enable: true,
      mode: "monolithic",
      environmentFile: ENVIRONMENT_FILE,
      settings: o.settings as unknown as NixValue,
    },
    // Only the networks in sshFrom reach SSH (rules below); nothing may open the port to everyone.
    openssh: { openFirewall: nixCall("lib.mkForce", false) },
  };
  if (postgres) {
    services.postgresql = {
      enable: true,
      ensureDatabases: [VPS_DB],
      ensureUsers: [{ name: VPS_DB, ensureDBOwnership: true }],
      // First match wins in pg_hba.conf: atticd over the socket is peer-authenticated, whatever the
      // host adds later.
      authentication: nixCall("lib.mkBefore", `local ${VPS_DB} ${VPS_DB} peer\n`),
    };
  }
  if (o.proxy === "caddy") {
    services.caddy = {
      enable: true,
      email: o.acmeEmail,
      virtualHosts: { [o.domain]: { extraConfig: caddyVhostConfig(o) } },
    };
  } else {
    services.nginx = {
      enable: true,
      virtualHosts: {
        [o.domain]: {
          enableACME: true,
          forceSSL: true,
          locations: {
            "/": {
              proxyPass: `http://${upstream(o.settings)}`,
              // Host, X-Forwarded-*: atticd's allowed-hosts sees the client's Host.
              recommendedProxySettings: true,
              extraConfig: nginxLocationConfig(o),
            },
          },
        },
      },
    };
  }

  const backupPath: NixValue[] = [
    postgres ? nixExpr("config.services.postgresql.package") : nixExpr("pkgs.sqlite"),
    nixExpr("pkgs.coreutils"),
    nixExpr("pkgs.findutils"),
    nixExpr("pkgs.gawk"),
    nixExpr("pkgs.util-linux"),
    ...(copy ? [nixExpr("pkgs.awscli2")] : []),
  ];
  const config: Record<string, NixValue | undefined> = {
    assertions: [
      {
        assertion: nixExpr("config.networking.firewall.enable"),
        message:
          "attic-infra: this host is public; its module relies on the NixOS firewall (SSH only from sshFrom). Set networking.firewall.enable = true.",
      },
      {
        assertion: nixExpr("!(config.services.firewalld.enable or false)"),
        message:
          "attic-infra: the SSH rules are written for the iptables or nftables NixOS firewall, not firewalld. Allow SSH from sshFrom in firewalld yourself, or switch the backend.",
      },
    ],
    services,
    ...(o.proxy === "nginx"
      ? { security: { acme: { acceptTerms: true, defaults: { email: o.acmeEmail } } } }
      : {}),
    networking: {
      firewall: {
        allowedTCPPorts: [80, 443],
        // Caddy also serves HTTP/3 on UDP 443.
        ...(o.proxy === "caddy" ? { allowedUDPPorts: [443] } : {}),
        // The backend decides which option its rules go in; setting the other one is an error.
        extraCommands: nixCall("lib.mkIf", nixExpr("(!config.networking.nftables.enable)"), iptables),
        extraInputRules: nixCall(
          "lib.mkIf",
          nixExpr("config.networking.nftables.enable"),
          nftablesRules(o.sshPort, o.sshFrom),
        ),
      },
    },
    environment: { systemPackages: [nixExpr("pkgs.curl")] },
    systemd: {
      services: {
        "atticd-dump": {
          description: "Dump the atticd database (every cache's signing key is in it)",
          // postgresql-setup.service runs ensureDatabases in newer nixpkgs; ordering on a unit that
          // does not exist is a no-op.
          after: postgres ? ["postgresql.service", "postgresql-setup.service"] : ["atticd.service"],
          ...(postgres ? { requires: ["postgresql.service"] } : {}),
          path: backupPath,
          ...(copy
            ? {
                environment: {
                  AWS_DEFAULT_REGION: copy.region,
                  // Backblaze B2 rejects the CRC checksum headers newer AWS CLIs send by default.
                  AWS_REQUEST_CHECKSUM_CALCULATION: "when_required",
                  AWS_RESPONSE_CHECKSUM_VALIDATION: "when_required",
                },
              }
            : {}),
          serviceConfig: {
            Type: "oneshot",
            UMask: "0077",
            // The bucket's keys: the same file atticd reads.
            ...(copy ? { EnvironmentFile: ENVIRONMENT_FILE } : {}),
          },
          script: dumpScript({ database: postgres ? "postgresql" : "sqlite", backup: o.backup }),
        },
        ...(postgres
          ? {
              // Required by atticd and ordered before it: a failed dump keeps a new atticd from
              // migrating a database nobody could restore.
              "atticd-dump-before-upgrade": {
                description: "Dump the atticd database before a new atticd migrates it",
                before: ["atticd.service"],
                requiredBy: ["atticd.service"],
                after: ["postgresql.service", "postgresql-setup.service"],
                requires: ["postgresql.service"],
                path: [
                  nixExpr("config.services.postgresql.package"),
                  nixExpr("pkgs.coreutils"),
                  nixExpr("pkgs.util-linux"),
                ],
                environment: { ATTICD_PACKAGE: nixExpr("toString config.services.atticd.package") },
                serviceConfig: { Type: "oneshot", UMask: "0077" },
                script: preUpgradeDumpScript({ dir: o.backup.dir }),
              },
            }
          : {}),
      },
      timers: {
        "atticd-dump": {
          wantedBy: ["timers.target"],
          timerConfig: { OnCalendar: "daily", Persistent: true, RandomizedDelaySec: "30m" },
        },
      },
    },
  };
  return config;
}

export function vpsModule(o: VpsModuleOptions): string {
  return [
    `# Generated by attic-infra (stack ${o.stack}). Do not edit: \`pulumi up\` replaces this file.`,
    "# Secrets are not here: atticd and the dump job read them from the environment file.",
    "# Firewall: this module opens 80/443 and SSH from sshFrom; it cannot close ports the host's",
    "# own configuration opens elsewhere (docs/vps.md).",
    "{ config, lib, pkgs, ... }:",
    toNix(vpsModuleConfig(o) as NixValue),
    "",
  ].join("\n");
}
