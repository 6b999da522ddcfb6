/**
 * The shell scripts of a NixOS host deploy (see host.ts for the resources that run them). Pure
 * generators: options in, POSIX sh out. Every remote script runs as root (asRoot), `set -eu`, and
 * receives secrets only on stdin.
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
 *                                   module.previous, rollback.sh
 *   <state>/rolled-back/            the last deploy the rollback undid (same files)
 *   <state>/deployed, deployed.toplevel   the last confirmed deploy and its system
 *   <state>/rollback.result         "ok|failed <deploy id>" from the last rollback
 */
import { shellQuote } from "../text";

export const ROLLBACK_UNIT = "attic-infra-rollback";
export const ACTIVATION_UNIT = "attic-infra-activate";

export interface HostPaths {
  /** The host's configuration: /etc/nixos (configuration.nix), or a flake's directory. */
  configDir: string;
  /** The live module: <configDir>/attic-infra/<moduleFile>, imported by the host's configuration. */
  moduleFile: string;
  stateDir: string;
  /** The system profile. */
  profile: string;
  /** /run: current-system and the activation lock live here. */
  runDir: string;
}

export function defaultPaths(flake?: string, moduleFile = "atticd.nix"): HostPaths {
  return {
    configDir: flake ? flake.slice(0, flake.indexOf("#")) : "/etc/nixos",
    moduleFile,
    stateDir: "/var/lib/attic-infra",
    profile: "/nix/var/nix/profiles/system",
    runDir: "/run",
  };
}

export const moduleRelPath = (p: HostPaths): string => `attic-infra/${p.moduleFile}`;

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
  return `s=${shellQuote(script)}
if [ "$(id -u)" = 0 ]; then exec /bin/sh -c "$s"; fi
if sudo -n true 2>/dev/null; then exec sudo -n /bin/sh -c "$s"; fi
echo "attic-infra: user $(id -un) cannot run sudo without a password; connect as root or allow passwordless sudo" >&2
exit 1`;
}

/** Replaces the line @VARS@ in `text` by the path variables (and `extra`) that `text` uses. */
function withVars(text: string, p: HostPaths, extra: Array<[string, string]> = []): string {
  const all: Array<[string, string]> = [
    ["CONFIG_DIR", p.configDir],
    ["MODULE", `${p.configDir}/${moduleRelPath(p)}`],
    ["STATE", p.stateDir],
    ["PENDING", `${p.stateDir}/pending-deploy`],
    ["PROFILE", p.profile],
    ["RUN", p.runDir],
    ...extra,
  ];
  const used = all
    .filter(([k]) => new RegExp(`\\$\\{?${k}\\b`).test(text))
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join("\n");
  return text.replace("@VARS@\n", used ? `${used}\n` : "");
}

/** A remote script: the checks every one starts with (NixOS, the host imports the module), then `body`. */
function remoteScript(p: HostPaths, what: string, body: string, extra: Array<[string, string]> = []): string {
  return withVars(
    `set -eu
# attic-infra: ${what}. Generated; see components/nixosHost/scripts.ts.
@VARS@
fail() {
  echo "attic-infra: $*" >&2
  exit 1
}
command -v nixos-rebuild >/dev/null 2>&1 || fail "nixos-rebuild not found on $(uname -n): this is not a NixOS host"
if ! grep -rqs --include='*.nix' --exclude-dir=attic-infra ${shellQuote(moduleRelPath(p).replace(/\./g, "\\."))} "$CONFIG_DIR"; then
  fail "no .nix file in $CONFIG_DIR imports ./${moduleRelPath(p)}; add \\"imports = [ ./${moduleRelPath(p)} ];\\" to the host's configuration (docs/office.md, one-time host setup)"
fi
${body}`,
    p,
    extra,
  );
}

/** Checks the host before anything is changed (the teardown holder's create). */
export function preflightScript(p: HostPaths): string {
  return remoteScript(
    p,
    "check the host",
    `echo "host ready: NixOS, privileges and the module import are in place"
`,
  );
}

const shList = (xs: string[]): string => xs.map(shellQuote).join(" ");

function healthCheck(s: ServiceSpec): string {
  return `curl -fsS -o /dev/null --max-time 5${s.healthHost ? ` -H ${shellQuote(`Host: ${s.healthHost}`)}` : ""} "$HEALTH_URL"`;
}

/**
 * The dead-man's script, written into the pending deploy when the timer is armed. systemd runs it
 * in a clean environment (PATH = systemd's own bin/), so it sets PATH to the previous and the new
 * system's tools — absolute store paths, captured at arm time.
 */
export function rollbackScript(
  o: Omit<DeployOptions, "module" | "flake" | "times"> & {
    previous: string;
    next: string;
    checkHealth: boolean;
  },
): string {
  const s = o.service;
  return withVars(
    `#!/bin/sh
# attic-infra: roll back deploy ${o.deployId} unless it was confirmed. Run by systemd
# (unit ${ROLLBACK_UNIT}), never by an SSH session. Generated; see components/nixosHost/scripts.ts.
set -eu
PATH=${shellQuote(`${o.previous}/sw/bin:${o.next}/sw/bin`)}
export PATH
DEPLOY_ID=${o.deployId}
PREVIOUS=${shellQuote(o.previous)}
@VARS@
CHECK_HEALTH=${o.checkHealth ? 1 : 0}
step="starting"
finish() {
  status=$?
  if [ "$status" != 0 ]; then
    # <2>: systemd logs this line at priority crit (SyslogLevelPrefix).
    echo "<2>attic-infra: ROLLBACK OF DEPLOY $DEPLOY_ID FAILED while $step; the host runs $(readlink -f "$RUN/current-system" || echo unknown). See docs/runbooks.md, office: a failed rollback." >&2
    echo "failed $DEPLOY_ID $step" > "$STATE/rollback.result" || true
  fi
}
trap finish EXIT
step="waiting for the deploy lock"
exec 9>"$STATE/lock"
flock 9
if [ "$(cat "$PENDING/id" 2>/dev/null || true)" != "$DEPLOY_ID" ]; then
  echo "attic-infra: deploy $DEPLOY_ID is not pending (confirmed, or already rolled back): nothing to do"
  echo "ok $DEPLOY_ID nothing-pending" > "$STATE/rollback.result"
  exit 0
fi
step="waiting for a running activation"
mkdir -p "$RUN/nixos"
if ! flock -n "$RUN/nixos/switch-to-configuration.lock" true; then
  echo "attic-infra: an activation is running; waiting for it to finish"
  flock "$RUN/nixos/switch-to-configuration.lock" true
fi
step="restoring the environment file"
restart=0
if ! cmp -s "$PENDING/env.previous" "$ENV_FILE"; then restart=1; fi
if [ -f "$PENDING/env.previous" ]; then
  cp -p "$PENDING/env.previous" "$ENV_FILE.rollback"
  mv -f "$ENV_FILE.rollback" "$ENV_FILE"
else
  rm -f "$ENV_FILE"
fi
step="restoring the live module"
if [ -f "$PENDING/module.previous" ]; then
  cp -p "$PENDING/module.previous" "$MODULE.rollback"
  mv -f "$MODULE.rollback" "$MODULE"
elif [ -f "$PENDING/module.absent" ]; then
  rm -f "$MODULE"
fi
step="restoring the boot default"
boot_previous=$(cat "$PENDING/boot.previous")
if [ "$(readlink -f "$PROFILE")" != "$boot_previous" ]; then
  nix-env -p "$PROFILE" --set "$boot_previous"
  "$boot_previous/bin/switch-to-configuration" boot
fi
${
  s.database
    ? `step="restoring the database"
migrations() { sqlite3 "$1" 'SELECT group_concat(version) FROM (SELECT version FROM seaql_migrations ORDER BY version)' 2>/dev/null || true; }
if [ -f "$PENDING/db.snapshot" ] && [ "$(migrations "$DB")" != "$(migrations "$PENDING/db.snapshot")" ]; then
  # The new system migrated the database; the previous one cannot open it (no down-migrations).
  systemctl stop ${shList(s.units)}
  restart=1
  rm -f "$DB-wal" "$DB-shm"
  cp -p "$PENDING/db.snapshot" "$DB"
  echo "attic-infra: restored the database snapshot taken before the switch"
fi
`
    : ""
}step="re-activating $PREVIOUS"
"$PREVIOUS/bin/switch-to-configuration" test
if [ "$restart" = 1 ] && [ "$CHECK_HEALTH" = 1 ]; then
  # Not restarted by the activation (their definitions did not change), yet their environment
  # file or database did.
  systemctl restart ${shList(s.units)}
fi
step="verifying the running system"
[ "$(readlink -f "$RUN/current-system")" = "$PREVIOUS" ]
if [ "$CHECK_HEALTH" = 1 ]; then
  step="checking $HEALTH_URL"
  tries=0
  until ${healthCheck(s)}; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ]
    sleep 2
  done
fi
step="recording the rollback"
rm -rf "$STATE/rolled-back"
mv "$PENDING" "$STATE/rolled-back"
systemctl stop ${ROLLBACK_UNIT}.timer 2>/dev/null || true
echo "ok $DEPLOY_ID" > "$STATE/rollback.result"
echo "attic-infra: rolled back deploy $DEPLOY_ID; the host runs $PREVIOUS again"
`,
    o.paths,
    [
      ["ENV_FILE", s.environmentFile],
      ["DB", s.database ?? ""],
      ["HEALTH_URL", s.healthUrl],
    ],
  );
}

/** Starts the rollback unit and waits for its verdict (the shell functions deploy and confirm share). */
function rollbackFunctions(o: DeployOptions): string {
  const wait = o.times.activationSeconds + o.times.healthSeconds + 120;
  return `timer_armed() { systemctl is-active --quiet ${ROLLBACK_UNIT}.timer; }
# Runs the pending deploy's rollback in its own unit (it survives this session) and waits for it.
run_rollback() {
  rm -f "$STATE/rollback.result"
  # The rollback takes the deploy lock itself.
  exec 9>&-
  if timer_armed; then
    systemctl start ${ROLLBACK_UNIT}.service
  else
    systemd-run --unit=${ROLLBACK_UNIT}-now --collect --quiet /bin/sh "$PENDING/rollback.sh"
  fi
  waited=0
  until [ -f "$STATE/rollback.result" ]; do
    [ "$waited" -lt ${wait * 5} ] || return 1
    sleep 0.2
    waited=$((waited + 1))
  done
  lock
  read -r verdict _ < "$STATE/rollback.result"
  [ "$verdict" = ok ]
}
roll_back_and_fail() {
  echo "attic-infra: $1; rolling back to $(cat "$PENDING/previous")" >&2
  if run_rollback; then
    fail "$1; the host was rolled back (journalctl -u ${ROLLBACK_UNIT}). Fix the cause and run pulumi up again."
  fi
  fail "$1, and the rollback FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u ${ROLLBACK_UNIT}* (docs/runbooks.md)"
}
`;
}

/**
 * One SSH session: stage, build, arm, activate, health check. stdin: the environment file.
 * Exits 0 when the new system runs, answers, and awaits the confirm.
 */
export function deployScript(o: DeployOptions): string {
  const s = o.service;
  const rel = moduleRelPath(o.paths);
  const build = o.flake
    ? `nixos-rebuild build --flake "$work/config#${o.flake.slice(o.flake.indexOf("#") + 1)}"`
    : `nixos-rebuild build -I nixos-config="$work/config/configuration.nix"`;
  return remoteScript(
    o.paths,
    "deploy a new system, pending confirmation",
    `DEPLOY_ID=${o.deployId}
umask 077
mkdir -p "$STATE"
chmod 0700 "$STATE"
lock() {
  exec 9>"$STATE/lock"
  flock -w 60 9 || fail "another attic-infra deploy, confirm or rollback has held $STATE/lock on $(uname -n) for 60 s; wait for it to finish (journalctl -u ${ROLLBACK_UNIT}*), then run pulumi up again"
}
lock
# The secret environment file passes through here: inside the state directory (0700), never /tmp.
# A work directory that a killed session left behind is removed by the next one, under the lock.
work="$STATE/work"
rm -rf "$work"
mkdir -m 0700 "$work"
trap 'rm -rf "$work"' EXIT
cat > "$work/env"
${rollbackFunctions(o)}current() { readlink -f "$RUN/current-system"; }
wait_for_activation() {
  mkdir -p "$RUN/nixos"
  waited=0
  while systemctl is-active --quiet ${ACTIVATION_UNIT}.service; do
    [ "$waited" -lt ${o.times.activationSeconds * 10} ] || break
    sleep 0.1
    waited=$((waited + 1))
  done
  timeout ${o.times.activationSeconds} flock "$RUN/nixos/switch-to-configuration.lock" true \\
    || fail "another activation still holds $RUN/nixos/switch-to-configuration.lock after ${o.times.activationSeconds} s (a nixos-rebuild on the host?); wait for it, then run pulumi up again"
}
health() {
  deadline=$(($(date +%s) + ${o.times.healthSeconds}))
  until ${healthCheck(s)} 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.25
  done
}

if [ "$(cat "$STATE/deployed" 2>/dev/null || true)" = "$DEPLOY_ID" ] && [ ! -e "$PENDING/id" ] \\
  && [ "$(current)" = "$(cat "$STATE/deployed.toplevel" 2>/dev/null || true)" ]; then
  echo "deploy $DEPLOY_ID is live and confirmed; nothing to do"
  exit 0
fi

if [ -e "$PENDING/id" ]; then
  pending=$(cat "$PENDING/id")
  if [ "$pending" = "$DEPLOY_ID" ] && timer_armed; then
    wait_for_activation
    if [ "$(current)" = "$(cat "$PENDING/toplevel")" ] && health; then
      echo "resuming deploy $DEPLOY_ID: $(current) is active, answers $HEALTH_URL, and awaits the confirm"
      exit 0
    fi
    echo "attic-infra: deploy $DEPLOY_ID was interrupted before its system ran and answered; rolling it back, then deploying again" >&2
    run_rollback || fail "rolling back the interrupted deploy $DEPLOY_ID FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u ${ROLLBACK_UNIT}* (docs/runbooks.md)"
  elif timer_armed; then
    fail "deploy $pending, not this one ($DEPLOY_ID), awaits confirmation on $(uname -n) and its rollback is armed. Let it roll back (journalctl -u ${ROLLBACK_UNIT}) or roll back now with: systemctl start ${ROLLBACK_UNIT}.service — then run pulumi up again"
  else
    echo "attic-infra: deploy $pending was left unconfirmed without an armed rollback (the host rebooted inside the window, or a rollback failed); rolling it back first" >&2
    run_rollback || fail "rolling back the unconfirmed deploy $pending FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u ${ROLLBACK_UNIT}* (docs/runbooks.md)"
  fi
elif timer_armed; then
  fail "a rollback timer (${ROLLBACK_UNIT}.timer) is armed on $(uname -n) but no deploy is pending; an earlier attic-infra version armed it. Let it fire or stop it (systemctl stop ${ROLLBACK_UNIT}.timer), then run pulumi up again"
fi

wait_for_activation
previous=$(current)
boot_previous=$(readlink -f "$PROFILE")

# The module is built from a copy of the configuration: the live import path keeps the confirmed
# module until the confirm, so a reboot or a manual rebuild meanwhile uses that one.
rm -rf "$PENDING"
mkdir -p "$PENDING"
# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '%s' ${shellQuote(o.module)} > "$PENDING/module.nix"
chmod 0644 "$PENDING/module.nix"
cp -a "$CONFIG_DIR/." "$work/config"
mkdir -p "$work/config/attic-infra"
cp "$PENDING/module.nix" "$work/config/${rel}"
if [ -d "$work/config/.git" ]; then
  # A flake in a git repository ignores untracked files.
  git -C "$work/config" -c safe.directory='*' add --intent-to-add -- ${shellQuote(rel)} \\
    || fail "could not add ${rel} to the flake's git index"
fi
cd "$work"
if ! timeout ${o.times.buildSeconds} ${build} > "$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  rm -rf "$PENDING"
  fail "nixos-rebuild build failed (last lines above); nothing was activated, the host is unchanged"
fi
toplevel=$(readlink -f "$work/result")

echo "$previous" > "$PENDING/previous"
echo "$boot_previous" > "$PENDING/boot.previous"
echo "$toplevel" > "$PENDING/toplevel"
cp "$work/env" "$PENDING/env"
if [ -f "$ENV_FILE" ]; then cp -p "$ENV_FILE" "$PENDING/env.previous"; fi
if [ -n "$DB" ] && [ -f "$DB" ]; then
  sqlite3 "$DB" ".backup '$PENDING/db.snapshot'" || fail "could not snapshot $DB before the switch; nothing was activated"
  chown --reference="$DB" "$PENDING/db.snapshot"
fi
check_health=0
# A confirmed deploy before this one (of any version of this program): the previous system runs
# the service, so the rollback must see it answer again.
if [ -s "$STATE/deployed" ]; then check_health=1; fi
# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '%s' @ROLLBACK@ | sed -e "s|@PREVIOUS@|$previous|g" -e "s|@NEXT@|$toplevel|g" -e "s|^CHECK_HEALTH=1$|CHECK_HEALTH=$check_health|" > "$PENDING/rollback.sh"
chmod 0700 "$PENDING/rollback.sh"

systemctl stop ${ROLLBACK_UNIT}.timer ${ROLLBACK_UNIT}.service 2>/dev/null || true
systemctl reset-failed ${ROLLBACK_UNIT}.timer ${ROLLBACK_UNIT}.service 2>/dev/null || true
echo "$DEPLOY_ID" > "$PENDING/id"
systemd-run --on-active=${o.times.windowSeconds} --unit=${ROLLBACK_UNIT} \\
  --description="attic-infra: roll back deploy $DEPLOY_ID unless confirmed" /bin/sh "$PENDING/rollback.sh" >/dev/null
echo "armed: unless confirmed within ${o.times.windowSeconds} s, the host rolls back to $previous"
# From here on the armed rollback owns the outcome: it must be able to take the lock while this
# session activates (it waits for the activation itself), even if this session hangs.
exec 9>&-

env_changed=0
if ! cmp -s "$work/env" "$ENV_FILE"; then
  env_changed=1
  install -m 0600 -o root -g root "$work/env" "$ENV_FILE.next"
  mv -f "$ENV_FILE.next" "$ENV_FILE"
fi
# Its own unit, as nixos-rebuild does: the activation survives this session.
if ! timeout ${o.times.activationSeconds} systemd-run --unit=${ACTIVATION_UNIT} --collect --wait --pipe --quiet \\
  "$toplevel/bin/switch-to-configuration" test > "$work/activate.log" 2>&1; then
  tail -n 40 "$work/activate.log" >&2
  roll_back_and_fail "activating $toplevel failed (last lines above)"
fi
# The rollback may have fired meanwhile (this session could have been cut off and linger): act
# on the host again only under the lock, and only while this deploy is still the pending one.
lock
[ "$(cat "$PENDING/id" 2>/dev/null || true)" = "$DEPLOY_ID" ] \
  || fail "deploy $DEPLOY_ID was rolled back while it activated (the dead-man fired: journalctl -u ${ROLLBACK_UNIT}); run pulumi up again"
if [ "$env_changed" = 1 ]; then systemctl restart ${shList(s.units)}; fi
exec 9>&-
health || roll_back_and_fail "$HEALTH_URL did not answer within ${o.times.healthSeconds} s of the activation"
echo "activated $toplevel; $HEALTH_URL answers; awaiting the confirm over a new connection"
`,
    [
      ["ENV_FILE", s.environmentFile],
      ["DB", s.database ?? ""],
      ["HEALTH_URL", s.healthUrl],
    ],
    // Inserted after the variables are chosen: its own variables are not this script's.
  ).replace(
    "@ROLLBACK@",
    shellQuote(rollbackScript({ ...o, previous: "@PREVIOUS@", next: "@NEXT@", checkHealth: true })),
  );
}

/** A new SSH session: make the tested system the boot default and the module live, under the lock. */
export function confirmScript(o: Pick<DeployOptions, "paths" | "flake" | "deployId" | "service">): string {
  const rel = moduleRelPath(o.paths);
  return remoteScript(
    o.paths,
    "confirm a deploy from a new connection",
    `DEPLOY_ID=${o.deployId}
exec 9>"$STATE/lock"
flock -w 60 9 || fail "the deploy lock $STATE/lock is still held after 60 s (a rollback running?); run pulumi up again"
current=$(readlink -f "$RUN/current-system")
if [ "$(cat "$PENDING/id" 2>/dev/null || true)" != "$DEPLOY_ID" ]; then
  if [ "$(cat "$STATE/deployed" 2>/dev/null || true)" = "$DEPLOY_ID" ] && [ "$current" = "$(cat "$STATE/deployed.toplevel")" ]; then
    echo "deploy $DEPLOY_ID already confirmed"
    exit 0
  fi
  if [ "$(cat "$STATE/rolled-back/id" 2>/dev/null || true)" = "$DEPLOY_ID" ]; then
    fail "deploy $DEPLOY_ID was rolled back before it was confirmed (the dead-man timer fired: journalctl -u ${ROLLBACK_UNIT}); run pulumi up again to redeploy, or raise the rollback window if it was too short"
  fi
  fail "deploy $DEPLOY_ID is not pending on $(uname -n); run pulumi up again"
fi
toplevel=$(cat "$PENDING/toplevel")
[ "$current" = "$toplevel" ] \\
  || fail "deploy $DEPLOY_ID is pending but the host runs $current, not $toplevel (rebooted inside the window?); run pulumi up again: it rolls the pending deploy back and redeploys"
curl -fsS -o /dev/null --max-time 5${o.service.healthHost ? ` -H ${shellQuote(`Host: ${o.service.healthHost}`)}` : ""} "$HEALTH_URL" \\
  || fail "$HEALTH_URL does not answer; not confirming: the host rolls back by itself (journalctl -u ${ROLLBACK_UNIT})"
# The timer stays armed until the end: if anything below fails, the rollback undoes it (it restores
# the boot default and the module it finds changed).
# Only the first attempt records it: a retried confirm may find its own module already live.
if [ ! -e "$PENDING/module.previous" ] && [ ! -e "$PENDING/module.absent" ]; then
  if [ -f "$MODULE" ]; then cp -p "$MODULE" "$PENDING/module.previous"; else touch "$PENDING/module.absent"; fi
fi
nix-env -p "$PROFILE" --set "$toplevel"
"$toplevel/bin/switch-to-configuration" boot
mkdir -p "$(dirname "$MODULE")"
cp "$PENDING/module.nix" "$MODULE.confirm"
mv -f "$MODULE.confirm" "$MODULE"
${
  o.flake
    ? `if [ -d "$CONFIG_DIR/.git" ]; then
  git -C "$CONFIG_DIR" -c safe.directory='*' add --intent-to-add -- ${shellQuote(rel)} \\
    || fail "could not add ${rel} to the flake's git index in $CONFIG_DIR"
fi
`
    : ""
}# Leftovers of the layout before the pending path (staged .next files, the old rollback).
rm -f "$MODULE.next" "$MODULE.previous" "$ENV_FILE.next" "$ENV_FILE.previous" "$STATE/rollback.sh" "$STATE/pending"
echo "$DEPLOY_ID" > "$STATE/deployed"
echo "$toplevel" > "$STATE/deployed.toplevel"
rm -rf "$STATE/confirmed"
mv "$PENDING" "$STATE/confirmed"
systemctl stop ${ROLLBACK_UNIT}.timer
echo "confirmed deploy $DEPLOY_ID: $toplevel is the boot default and the module is live; rollback disarmed"
`,
    [
      ["HEALTH_URL", o.service.healthUrl],
      ["ENV_FILE", o.service.environmentFile],
    ],
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
  return remoteScript(
    o.paths,
    "remove the module from the host (its state is kept)",
    `exec 9>"$STATE/lock"
flock -w 120 9 || fail "the deploy lock $STATE/lock is still held after 120 s; try again"
systemctl stop ${ROLLBACK_UNIT}.timer 2>/dev/null || true
rm -rf "$PENDING"
if [ -f "$MODULE" ]; then cp -p "$MODULE" "$MODULE.previous"; fi
# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '%s' ${shellQuote(o.removedModule)} > "$MODULE"
work="$STATE/work"
rm -rf "$work"
mkdir -m 0700 "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! timeout ${o.timeoutSeconds} nixos-rebuild switch${o.flake ? ` --flake ${shellQuote(o.flake)}` : ""} > "$work/log" 2>&1; then
  tail -n 40 "$work/log" >&2
  if [ -f "$MODULE.previous" ]; then cp -p "$MODULE.previous" "$MODULE"; fi
  fail "nixos-rebuild switch failed while removing the module (last lines above); the module was restored"
fi
rm -f "$ENV_FILE" "$ENV_FILE.next" "$MODULE.previous" "$MODULE.next" "$STATE/deployed" "$STATE/deployed.toplevel" "$STATE/pending"
echo "removed from the host; the service's state is kept"
`,
    [["ENV_FILE", o.environmentFile]],
  );
}
