/**
 * The shell scripts of a NixOS host deploy (see host.ts for the resources that run them): the .sh
 * files beside this module, each after a header of the values this deploy gives it (shellScript.ts).
 * Options in, POSIX sh out. Every remote script runs as root (asRoot, as-root.sh), `set -eu`, and
 * receives secrets only on stdin; deploy.sh, confirm.sh, teardown.sh and preflight.sh start with
 * the host checks (host-checks.sh: NixOS, the host imports the module).
 *
 * The deploy follows deploy-rs's "magic rollback" (activate.rs): one process owns the decision
 * between confirm and rollback, and the confirm comes over a NEW SSH connection, so a deploy that
 * cut the host off cannot confirm itself. Here that process is the host's deploy lock
 * (<state>/lock, flock): the confirm and the rollback both take it and decide under it.
 *
 *   deploy (one SSH session, the environment file on stdin):
 *     stage the module at a pending path → build it from a copy of the configuration → record the
 *     toplevel store path → snapshot the database → arm the dead-man timer → install the
 *     environment file → `<toplevel>/bin/switch-to-configuration test` in its own unit (it survives
 *     the session) → health check. On failure it starts the rollback unit and waits for its verdict.
 *   confirm (a new SSH session): under the lock, set the system profile to that exact toplevel, run
 *   its `switch-to-configuration boot`, move the module to the live import path, disarm the timer.
 *   rollback (a systemd unit, never the SSH session): under the lock, unless confirmed, wait for a
 *   running activation, restore the environment file, boot default, module and (if the new system
 *   migrated it) the database snapshot, re-activate the system captured when the timer was armed,
 *   verify /run/current-system and the health check; a failure is logged at priority crit.
 *
 * Files on the host (<state> is /var/lib/attic-infra):
 *   <config>/attic-infra/<module>   the live, confirmed module: what any rebuild or reboot uses
 *   <state>/pending-deploy/         the deploy awaiting confirmation: id, module.nix, env,
 *                                   env.previous, toplevel, previous, boot.previous, db.snapshot,
 *                                   module.previous, rollback.sh (rollback.sh after the systems it
                                   moves between, which only the deploy knows)
 *   <state>/rolled-back/            the last deploy the rollback undid (same files)
 *   <state>/deployed, deployed.toplevel   the last confirmed deploy and its system
 *   <state>/rollback.result         "ok|failed <deploy id>" from the last rollback
 */
import { readScript, shellHeader } from "../shellScript";
import { shellQuote } from "../text";

const file = (name: string): string => readScript(__dirname, name);

/** Where the live module sits in the host's configuration directory, which imports it from there. */
export const MODULE_REL_PATH = "attic-infra/atticd.nix";

export interface HostPaths {
  /** The host's configuration: /etc/nixos (configuration.nix), or a flake's directory. */
  configDir: string;
  stateDir: string;
  /** The system profile. */
  profile: string;
  /** /run: current-system and the activation lock live here. */
  runDir: string;
}

export function defaultPaths(flake?: string): HostPaths {
  return {
    configDir: flake ? flake.slice(0, flake.indexOf("#")) : "/etc/nixos",
    stateDir: "/var/lib/attic-infra",
    profile: "/nix/var/nix/profiles/system",
    runDir: "/run",
  };
}

/** The path variables the scripts use (a script's header takes those it needs). */
function pathValues(p: HostPaths) {
  return {
    CONFIG_DIR: p.configDir,
    MODULE: `${p.configDir}/${MODULE_REL_PATH}`,
    STATE: p.stateDir,
    PENDING: `${p.stateDir}/pending-deploy`,
    PROFILE: p.profile,
    RUN: p.runDir,
  };
}

/** What runs on the host and how the deploy knows it works. */
export interface ServiceSpec {
  /** systemd units restarted when only the environment file changed, stopped to restore the database. */
  units: string[];
  /** Where the environment file lives (the module points the service at it). Mode 0600, root. */
  environmentFile: string;
  /** An SQLite database the new system may migrate at start (sea-orm's seaql_migrations table). */
  database?: string;
  /** Answers 2xx when the service works, e.g. http://127.0.0.1:8080/. */
  healthUrl: string;
  /** Sent as the Host header of the health check (for servers that check it). */
  healthHost?: string;
}

/** The service's values, as the scripts name them. */
function serviceValues(s: ServiceSpec) {
  return {
    ENV_FILE: s.environmentFile,
    DB: s.database ?? "",
    HEALTH_URL: s.healthUrl,
    HEALTH_HOST: s.healthHost ?? "",
    UNITS: s.units.join(" "),
  };
}

export interface DeployTimes {
  buildSeconds: number;
  activationSeconds: number;
  healthSeconds: number;
  /** The dead-man window: unconfirmed after this long, the host rolls back. */
  windowSeconds: number;
}

export interface DeployOptions {
  paths: HostPaths;
  /** `<dir>#<host>` for flake hosts. */
  flake?: string;
  /** Changes whenever the module or the environment file changes. */
  deployId: string;
  module: string;
  service: ServiceSpec;
  times: DeployTimes;
}

/**
 * The command line that runs `script` as root: directly when connected as root, else with
 * `sudo -n` (never a password prompt). The script travels in the command, stdin stays free.
 */
export function asRoot(script: string): string {
  // The command has always ended without a newline: a changed command is run again.
  return `s=${shellQuote(script)}\n${file("as-root.sh").replace(/\n$/, "")}`;
}

/** A remote script: its header, the host checks every one starts with, then `body`. */
function remoteScript(what: string, values: Record<string, string>, body: string): string {
  return `${shellHeader([`attic-infra: ${what}. Generated; see components/nixosHost/scripts.ts.`], values)}${file("host-checks.sh")}${body}`;
}

/** Checks the host before anything is changed (the teardown holder's create). */
export function preflightScript(p: HostPaths): string {
  const { CONFIG_DIR } = pathValues(p);
  return remoteScript("check the host", { CONFIG_DIR }, file("preflight.sh"));
}

/**
 * The dead-man's script, without its first lines: the deploy writes `#!/bin/sh` and PREVIOUS, NEXT
 * (the systems it moves between) and CHECK_HEALTH before it on the host. systemd runs it in a clean
 * environment (PATH = systemd's own bin/), so it sets PATH to those systems' tools.
 */
export function rollbackScript(o: Pick<DeployOptions, "paths" | "deployId" | "service">): string {
  const { MODULE, STATE, PENDING, PROFILE, RUN } = pathValues(o.paths);
  return `${shellHeader(
    [
      `attic-infra: roll back deploy ${o.deployId} unless it was confirmed. Run by systemd`,
      "(unit attic-infra-rollback), never by an SSH session. Generated; see components/nixosHost/scripts.ts.",
    ],
    {
      DEPLOY_ID: o.deployId,
      MODULE,
      STATE,
      PENDING,
      PROFILE,
      RUN,
      ...serviceValues(o.service),
    },
  )}${file("rollback.sh")}`;
}

/**
 * One SSH session: stage, build, arm, activate, health check. stdin: the environment file.
 * Exits 0 when the new system runs, answers, and awaits the confirm.
 */
export function deployScript(o: DeployOptions): string {
  const { CONFIG_DIR, STATE, PENDING, PROFILE, RUN } = pathValues(o.paths);
  return remoteScript(
    "deploy a new system, pending confirmation",
    {
      CONFIG_DIR,
      STATE,
      PENDING,
      PROFILE,
      RUN,
      ...serviceValues(o.service),
      DEPLOY_ID: o.deployId,
      FLAKE: o.flake ?? "",
      BUILD_SECONDS: String(o.times.buildSeconds),
      ACTIVATION_SECONDS: String(o.times.activationSeconds),
      HEALTH_SECONDS: String(o.times.healthSeconds),
      WINDOW_SECONDS: String(o.times.windowSeconds),
      MODULE_TEXT: o.module,
      ROLLBACK: rollbackScript(o),
    },
    file("deploy.sh"),
  );
}

/** A new SSH session: make the tested system the boot default and the module live, under the lock. */
export function confirmScript(o: Pick<DeployOptions, "paths" | "flake" | "deployId" | "service">): string {
  const { CONFIG_DIR, MODULE, STATE, PENDING, PROFILE, RUN } = pathValues(o.paths);
  const { HEALTH_URL, ENV_FILE, HEALTH_HOST } = serviceValues(o.service);
  return remoteScript(
    "confirm a deploy from a new connection",
    {
      CONFIG_DIR,
      MODULE,
      STATE,
      PENDING,
      PROFILE,
      RUN,
      HEALTH_URL,
      ENV_FILE,
      HEALTH_HOST,
      DEPLOY_ID: o.deployId,
      FLAKE: o.flake ?? "",
    },
    file("confirm.sh"),
  );
}

/**
 * On delete: the module becomes an empty one and the host switches to it; the service's state is
 * kept. A pending deploy is dropped first (its timer stopped).
 */
export function teardownScript(o: {
  paths: HostPaths;
  flake?: string;
  removedModule: string;
  environmentFile: string;
  timeoutSeconds: number;
}): string {
  const { CONFIG_DIR, MODULE, STATE, PENDING } = pathValues(o.paths);
  return remoteScript(
    "remove the module from the host (its state is kept)",
    {
      CONFIG_DIR,
      MODULE,
      STATE,
      PENDING,
      ENV_FILE: o.environmentFile,
      FLAKE: o.flake ?? "",
      TIMEOUT_SECONDS: String(o.timeoutSeconds),
      REMOVED_MODULE: o.removedModule,
    },
    file("teardown.sh"),
  );
}
