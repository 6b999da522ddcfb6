/**
 * The generated NixOS module for the office host (`attic-infra/atticd.nix`): nixpkgs'
 * `services.atticd` (NixOS 24.11+) with the server model's settings, the firewall port, the storage
 * mount, and a daily SQLite backup. Nothing secret is in it: it lands in the world-readable store.
 */
import type { AtticSettings } from "../components/attic/settings";
import { shellQuote } from "../components/text";
import { type NixValue, nixExpr, toNix } from "./nix";

export const ENVIRONMENT_FILE = "/var/lib/attic-infra/atticd.env";
export const ATTICD_STATE_DIR = "/var/lib/atticd";
/** With DynamicUser, systemd keeps the state directory here and links /var/lib/atticd to it. */
export const ATTICD_PRIVATE_STATE_DIR = "/var/lib/private/atticd";
export const SQLITE_DATABASE = `${ATTICD_STATE_DIR}/server.db`;

export interface ModuleOptions {
  settings: AtticSettings;
  /** TCP port atticd listens on (opened in the firewall when openFirewall). */
  port: number;
  openFirewall: boolean;
  /** A block device for local storage, mounted at the storage path. */
  storageDevice?: string;
  backup: { dir: string; keep: number };
  /** Shown in the header: which stack wrote the file. */
  stack: string;
}

/**
 * The daily backup: sqlite3's online .backup (consistent while atticd runs), keeping the newest
 * `keep` files. Backup names sort by time, so the shell's sorted glob lists the oldest first.
 */
export function backupScript(backup: { dir: string; keep: number }, database = SQLITE_DATABASE): string {
  return [
    "set -eu",
    `dir=${shellQuote(backup.dir)}`,
    `db=${shellQuote(database)}`,
    'mkdir -p "$dir"',
    'chmod 0700 "$dir"',
    'if [ ! -f "$db" ]; then',
    '  echo "no atticd database yet; nothing to back up"',
    "  exit 0",
    "fi",
    "stamp=$(date -u +%Y%m%dT%H%M%SZ)",
    `sqlite3 "$db" ".backup '$dir/server-$stamp.db'"`,
    'set -- "$dir"/server-*.db',
    `remove=$(($# - ${backup.keep}))`,
    'for old in "$@"; do',
    '  [ "$remove" -gt 0 ] || break',
    '  rm -f -- "$old"',
    "  remove=$((remove - 1))",
    "done",
    'echo "backed up to $dir/server-$stamp.db"',
    "",
  ].join("\n");
}

/**
 * The restore of a backup, as the runbook gives it (run as root on the host). atticd is a systemd
 * DynamicUser: a file copied in by root stays root's, and atticd cannot open it; systemd fixes the
 * ownership of the state directory itself, not of files put into it. A `-wal`/`-shm` pair left
 * from the replaced database would be replayed into the restored one: they go first.
 */
export function restoreCommands(backupFile: string, stateDir = ATTICD_PRIVATE_STATE_DIR): string {
  const db = `${stateDir}/server.db`;
  return [
    "systemctl stop atticd.service",
    `rm -f ${db}-wal ${db}-shm`,
    `cp ${backupFile} ${db}`,
    `chown --reference=${stateDir} ${db}`,
    `chmod 0600 ${db}`,
    "systemctl start atticd.service",
    "",
  ].join("\n");
}

/** The attribute set the module evaluates to (config side), before rendering. */
export function moduleConfig(o: ModuleOptions): Record<string, NixValue | undefined> {
  const storage = o.settings.storage;
  const config: Record<string, NixValue | undefined> = {
    services: {
      atticd: {
        enable: true,
        mode: "monolithic",
        environmentFile: ENVIRONMENT_FILE,
        settings: o.settings as unknown as NixValue,
      },
    },
    environment: { systemPackages: [nixExpr("pkgs.curl"), nixExpr("pkgs.sqlite")] },
    systemd: {
      services: {
        "atticd-backup": {
          description: "Back up the atticd SQLite database (every cache's signing key is in it)",
          after: ["atticd.service"],
          path: [nixExpr("pkgs.sqlite"), nixExpr("pkgs.coreutils"), nixExpr("pkgs.findutils")],
          serviceConfig: { Type: "oneshot", UMask: "0077" },
          script: backupScript(o.backup),
        },
      },
      timers: {
        "atticd-backup": {
          wantedBy: ["timers.target"],
          timerConfig: { OnCalendar: "daily", Persistent: true, RandomizedDelaySec: "30m" },
        },
      },
    },
  };
  if (o.openFirewall) config.networking = { firewall: { allowedTCPPorts: [o.port] } };
  if (o.storageDevice && storage.type === "local") {
    // atticd runs with DynamicUser: its state lives under /var/lib/private and /var/lib/atticd is
    // a link to it. Mount at the real path, and have atticd wait for the mount (RequiresMountsFor:
    // without its storage atticd does not start). nofail: a dead disk must not drop the headless
    // host into emergency mode, where no sshd runs; the device timeout bounds the wait at boot.
    const mountPoint = storage.path.replace(ATTICD_STATE_DIR, ATTICD_PRIVATE_STATE_DIR);
    config.fileSystems = {
      [mountPoint]: {
        device: o.storageDevice,
        fsType: "ext4",
        options: ["noatime", "nofail", "x-systemd.device-timeout=30s"],
      },
    };
    (config.systemd as Record<string, Record<string, NixValue>>).services!.atticd = {
      unitConfig: { RequiresMountsFor: [mountPoint] },
    };
  }
  return config;
}

export function atticdModule(o: ModuleOptions): string {
  return [
    `# Generated by attic-infra (stack ${o.stack}). Do not edit: \`pulumi up\` replaces this file.`,
    "# Secrets are not here: atticd reads them from the environment file.",
    "{ pkgs, ... }:",
    toNix(moduleConfig(o) as NixValue),
    "",
  ].join("\n");
}

/** What the host's configuration holds after `pulumi destroy`: nothing, until the import is removed. */
export function removedModule(stack: string): string {
  return [
    `# attic-infra (stack ${stack}) was removed from this host. atticd's state in ${ATTICD_STATE_DIR} is kept.`,
    "# Remove the `./attic-infra/atticd.nix` import from the host's configuration, then this file.",
    "{ ... }:",
    "{ }",
    "",
  ].join("\n");
}
