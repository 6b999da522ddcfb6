/**
 * The shell scripts the office deployment runs on the NixOS host over SSH (as remote.Command
 * `create`/`delete` text). POSIX sh, `set -eu`, non-interactive, as root or through `sudo -n`.
 * Secrets only ever arrive on stdin.
 *
 * Files on the host:
 *   <module dir>/atticd.nix            the live module (imported by the host's configuration)
 *   <module dir>/atticd.nix.next       staged by the upload step, installed by the switch step
 *   <module dir>/atticd.nix.previous   what was live before the last switch
 *   <state>/atticd.env{,.next,.previous}  the environment file (0600 root), likewise
 *   <state>/rollback.sh                what the dead-man timer runs
 *   <state>/pending, <state>/deployed  the deploy id switched but unconfirmed / last confirmed
 *
 * The switch follows deploy-rs's "magic rollback": build first (outside the window), arm a
 * transient systemd timer that rolls back to the generation from before, switch, check atticd
 * answers; a separate step, over a new SSH connection, disarms the timer. If the switch broke
 * networking or sshd, that step cannot connect, and the host rolls itself back.
 */
import { removedModule } from "../../nixos/atticdModule";
import { sha256, shellQuote } from "../text";

export interface HostPaths {
  /** Where the module lives: /etc/nixos/attic-infra, or <flake dir>/attic-infra. */
  moduleDir: string;
  /** Searched for the import line (the host's configuration or flake). */
  configDir: string;
  stateDir: string;
  /** The system profile. */
  profile: string;
}

export const ROLLBACK_UNIT = "attic-infra-rollback";

export function defaultPaths(flake?: string): HostPaths {
  const configDir = flake ? flake.slice(0, flake.indexOf("#")) : "/etc/nixos";
  return {
    moduleDir: `${configDir}/attic-infra`,
    configDir,
    stateDir: "/var/lib/attic-infra",
    profile: "/nix/var/nix/profiles/system",
  };
}

export interface SwitchOptions {
  paths: HostPaths;
  flake?: string;
  stack: string;
  /** sha256 of the module and of the environment file: together they identify this deploy. */
  moduleSha256: string;
  envSha256: string;
  rollbackTimeoutSeconds: number;
  buildTimeoutSeconds: number;
  /** http://127.0.0.1:<port>/ */
  healthUrl: string;
}

/** The deploy id: changes when the module or the environment file changes. */
export function deployId(moduleSha256: string, envSha256: string): string {
  return sha256(`${moduleSha256}\n${envSha256}`).slice(0, 32);
}

/** The common head of every script; defines only the path variables `body` uses. */
function withPrelude(p: HostPaths, what: string, body: string): string {
  const vars: Array<[string, string]> = [
    ["MODULE_DIR", p.moduleDir],
    ["CONFIG_DIR", p.configDir],
    ["STATE", p.stateDir],
    ["PROFILE", p.profile],
  ];
  const used = vars.filter(([name]) => name === "CONFIG_DIR" || body.includes(`$${name}`));
  return `set -eu
# attic-infra: ${what}. Generated; see components/office/scripts.ts.
${used.map(([name, value]) => `${name}=${shellQuote(value)}`).join("\n")}
fail() {
  echo "attic-infra: $*" >&2
  exit 1
}
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}
if [ "$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then
  fail "user $(id -un) cannot run sudo without a password; connect as root or allow passwordless sudo"
fi
command -v nixos-rebuild >/dev/null 2>&1 || fail "nixos-rebuild not found on $(uname -n): this is not a NixOS host"
if ! grep -rqs --include='*.nix' --exclude-dir=attic-infra 'attic-infra/atticd\\.nix' "$CONFIG_DIR"; then
  fail "no .nix file in $CONFIG_DIR imports ./attic-infra/atticd.nix; add \\"imports = [ ./attic-infra/atticd.nix ];\\" to the host's configuration (docs/office.md, one-time host setup)"
fi
${body}`;
}

/** Checks the host before anything is changed: NixOS, sudo, the import line. */
export function preflightScript(p: HostPaths): string {
  return withPrelude(
    p,
    "check the host",
    `echo "host ready: NixOS, privileges and the module import are in place"
`,
  );
}

/** Writes stdin to <dir>/<name>.next atomically (temp file + mv) with the given mode. */
function stageFromStdin(dirVar: string, name: string, mode: string, chownRoot: boolean): string {
  return `as_root mkdir -p "${dirVar}"
tmp=$(as_root mktemp "${dirVar}/.${name}.XXXXXX")
as_root tee "$tmp" >/dev/null
${chownRoot ? 'as_root chown 0:0 "$tmp"\n' : ""}as_root chmod ${mode} "$tmp"
as_root mv -f "$tmp" "${dirVar}/${name}.next"
`;
}

/** Step a: stage the module (stdin) beside the live one. */
export function uploadModuleScript(p: HostPaths): string {
  return withPrelude(
    p,
    "stage the atticd module",
    `${stageFromStdin("$MODULE_DIR", "atticd.nix", "0644", false)}echo "staged $MODULE_DIR/atticd.nix.next ($(as_root sha256sum "$MODULE_DIR/atticd.nix.next" | cut -c1-12))"
`,
  );
}

/** Step b: stage the environment file (stdin, secret) with mode 0600, owned by root. */
export function uploadEnvScript(p: HostPaths): string {
  return withPrelude(
    p,
    "stage atticd's environment file",
    `umask 077
as_root mkdir -p "$STATE"
as_root chmod 0700 "$STATE"
${stageFromStdin("$STATE", "atticd.env", "0600", true)}echo "staged $STATE/atticd.env.next (0600 root)"
`,
  );
}

/** Shell for: install <dir>/<name>.next as <dir>/<name>, keeping the old one as .previous. */
function promote(dirVar: string, name: string, absentPrevious: string): string {
  return `if as_root test -f "${dirVar}/${name}"; then
  as_root cp -p "${dirVar}/${name}" "${dirVar}/${name}.previous"
else
  ${absentPrevious}
fi
tmp=$(as_root mktemp "${dirVar}/.${name}.XXXXXX")
as_root cp "${dirVar}/${name}.next" "$tmp"
as_root chmod --reference="${dirVar}/${name}.next" "$tmp"
as_root mv -f "$tmp" "${dirVar}/${name}"
`;
}

/**
 * The dead-man's rollback, written to the host at arm time: the previous files and system
 * generation. With `--files-only` (a failed build: nothing was switched) it restores the files only.
 */
export function rollbackScript(p: HostPaths, generation: string): string {
  return `#!/bin/sh
# attic-infra: roll back an unconfirmed deploy to system generation ${generation}.
set -u
MODULE_DIR=${shellQuote(p.moduleDir)}
STATE=${shellQuote(p.stateDir)}
PROFILE=${shellQuote(p.profile)}
if [ -f "$MODULE_DIR/atticd.nix.previous" ]; then
  cp -p "$MODULE_DIR/atticd.nix.previous" "$MODULE_DIR/atticd.nix"
fi
if [ -f "$STATE/atticd.env.previous" ]; then
  cp -p "$STATE/atticd.env.previous" "$STATE/atticd.env"
else
  rm -f "$STATE/atticd.env"
fi
if [ "\${1:-}" = --files-only ]; then
  exit 0
fi
nix-env --profile "$PROFILE" --switch-generation ${generation}
"$PROFILE/bin/switch-to-configuration" switch
rm -f "$STATE/pending"
echo "attic-infra: rolled back to system generation ${generation}"
`;
}

/** Step c: install the staged files, build, arm the dead-man timer, switch, check health. */
export function switchScript(o: SwitchOptions): string {
  const id = deployId(o.moduleSha256, o.envSha256);
  const switchTimeout = Math.floor(o.rollbackTimeoutSeconds / 2);
  const healthAttempts = Math.max(1, Math.floor(o.rollbackTimeoutSeconds / 4 / 3));
  const rebuild = (action: string) =>
    `nixos-rebuild ${action}${o.flake ? ` --flake ${shellQuote(o.flake)}` : ""}`;
  return withPrelude(
    o.paths,
    "switch the host to the new atticd module, with automatic rollback",
    `DEPLOY_ID=${id}
HEALTH_URL=${shellQuote(o.healthUrl)}
if [ "$(as_root cat "$STATE/deployed" 2>/dev/null || true)" = "$DEPLOY_ID" ] \\
  && as_root cmp -s "$MODULE_DIR/atticd.nix.next" "$MODULE_DIR/atticd.nix" \\
  && as_root cmp -s "$STATE/atticd.env.next" "$STATE/atticd.env"; then
  echo "deploy $DEPLOY_ID is already live and confirmed; nothing to do"
  exit 0
fi
echo "${o.moduleSha256}  $MODULE_DIR/atticd.nix.next" | as_root sha256sum -c --status \\
  || fail "the staged module is not the one this deploy uploaded; run pulumi up again"
echo "${o.envSha256}  $STATE/atticd.env.next" | as_root sha256sum -c --status \\
  || fail "the staged environment file is not the one this deploy uploaded; run pulumi up again"

log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT
cd "$work"

generation=$(readlink "$PROFILE" | sed -n 's/^system-\\([0-9][0-9]*\\)-link$/\\1/p')
[ -n "$generation" ] || fail "cannot read the current system generation from $PROFILE"

${promote(
  "$MODULE_DIR",
  "atticd.nix",
  `# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '%s' ${shellQuote(removedModule(o.stack))} | as_root tee "$MODULE_DIR/atticd.nix.previous" >/dev/null`,
)}${promote("$STATE", "atticd.env", 'as_root rm -f "$STATE/atticd.env.previous"')}${
      o.flake
        ? `# A flake in a git repository ignores untracked files.
if [ -d "$CONFIG_DIR/.git" ]; then
  as_root git -C "$CONFIG_DIR" -c safe.directory="$CONFIG_DIR" add --intent-to-add -- attic-infra/atticd.nix \\
    || fail "could not add attic-infra/atticd.nix to the flake's git repository in $CONFIG_DIR"
fi
`
        : ""
    }
# The rollback script, then the timer that runs it unless the confirm step stops it.
# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '%s' ${shellQuote(rollbackScript(o.paths, "GENERATION"))} | sed "s/GENERATION/$generation/g" | as_root tee "$STATE/rollback.sh" >/dev/null
as_root chmod 0700 "$STATE/rollback.sh"

roll_back_now() {
  echo "attic-infra: $1; rolling back to system generation $generation" >&2
  as_root systemctl stop ${ROLLBACK_UNIT}.timer >/dev/null 2>&1 || true
  as_root sh "$STATE/rollback.sh" >&2 || echo "attic-infra: the rollback itself failed; the host needs a look" >&2
  exit 1
}

# Build first, outside the rollback window: a long build must not race the timer.
if ! as_root timeout ${o.buildTimeoutSeconds} ${rebuild("build")} >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  as_root sh "$STATE/rollback.sh" --files-only >/dev/null 2>&1 || true
  fail "nixos-rebuild build failed (last lines above); the host was not switched"
fi

as_root systemctl stop ${ROLLBACK_UNIT}.timer >/dev/null 2>&1 || true
as_root systemctl reset-failed ${ROLLBACK_UNIT}.timer ${ROLLBACK_UNIT}.service >/dev/null 2>&1 || true
as_root systemd-run --on-active=${o.rollbackTimeoutSeconds} --unit=${ROLLBACK_UNIT} \\
  --description="attic-infra: roll back an unconfirmed deploy" /bin/sh "$STATE/rollback.sh" >/dev/null
echo "$DEPLOY_ID" | as_root tee "$STATE/pending" >/dev/null
echo "armed: the host rolls back to generation $generation in ${o.rollbackTimeoutSeconds} s unless confirmed"

if ! as_root timeout ${switchTimeout} ${rebuild("switch")} >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  roll_back_now "nixos-rebuild switch failed (last lines above)"
fi

attempt=0
until curl -fsS -o /dev/null --max-time 3 "$HEALTH_URL" 2>/dev/null; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge ${healthAttempts} ]; then
    roll_back_now "atticd did not answer $HEALTH_URL after the switch"
  fi
  sleep 3
done
echo "switched to $(readlink "$PROFILE"); atticd answers $HEALTH_URL; awaiting confirmation"
`,
  );
}

/** Step d, over a new SSH connection: the host is still reachable, so stop the dead-man timer. */
export function confirmScript(o: { paths: HostPaths; deployId: string; healthUrl: string }): string {
  return withPrelude(
    o.paths,
    "confirm the switch from a new connection and disarm the rollback",
    `DEPLOY_ID=${o.deployId}
if [ "$(as_root cat "$STATE/deployed" 2>/dev/null || true)" = "$DEPLOY_ID" ] && ! as_root test -f "$STATE/pending"; then
  echo "deploy $DEPLOY_ID already confirmed"
  exit 0
fi
[ "$(as_root cat "$STATE/pending" 2>/dev/null || true)" = "$DEPLOY_ID" ] \\
  || fail "no switch of deploy $DEPLOY_ID awaits confirmation: the dead-man timer already rolled the host back (see: journalctl -u ${ROLLBACK_UNIT}); run pulumi up again"
as_root systemctl is-active --quiet ${ROLLBACK_UNIT}.timer \\
  || fail "the rollback timer is no longer armed: the host may have rolled back; run pulumi up again"
curl -fsS -o /dev/null --max-time 5 ${shellQuote(o.healthUrl)} \\
  || fail "atticd does not answer ${o.healthUrl}; not confirming, the host will roll back"
as_root systemctl stop ${ROLLBACK_UNIT}.timer
as_root mv -f "$STATE/pending" "$STATE/deployed"
echo "confirmed deploy $DEPLOY_ID; rollback disarmed"
`,
  );
}

/**
 * On delete: the host stops running atticd, and its state (/var/lib/atticd: every NAR and cache
 * key) is kept. The import line stays valid: the module becomes an empty one.
 */
export function teardownScript(o: {
  paths: HostPaths;
  flake?: string;
  stack: string;
  timeoutSeconds: number;
}): string {
  return withPrelude(
    o.paths,
    "remove atticd from the host (its state is kept)",
    `as_root systemctl stop ${ROLLBACK_UNIT}.timer >/dev/null 2>&1 || true
if as_root test -f "$MODULE_DIR/atticd.nix"; then
  as_root cp -p "$MODULE_DIR/atticd.nix" "$MODULE_DIR/atticd.nix.previous"
fi
# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '%s' ${shellQuote(removedModule(o.stack))} | as_root tee "$MODULE_DIR/atticd.nix" >/dev/null
as_root rm -f "$MODULE_DIR/atticd.nix.next"
log=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$log" "$work"' EXIT
cd "$work"
if ! as_root timeout ${o.timeoutSeconds} nixos-rebuild switch${o.flake ? ` --flake ${shellQuote(o.flake)}` : ""} >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  as_root cp -p "$MODULE_DIR/atticd.nix.previous" "$MODULE_DIR/atticd.nix"
  fail "nixos-rebuild switch failed while removing atticd (last lines above); the module was restored"
fi
as_root rm -f "$STATE/atticd.env" "$STATE/atticd.env.next" "$STATE/atticd.env.previous" "$STATE/pending" "$STATE/deployed"
echo "atticd removed from the host; its state in /var/lib/atticd is kept"
`,
  );
}
