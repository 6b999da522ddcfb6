/**
 * A fake NixOS host on this machine for the office deploy tests: a directory tree standing in for
 * /etc/nixos, /var/lib/attic-infra and the system profile, and recording stand-ins for the
 * programs the scripts call. Every call is appended to calls.log with its arguments.
 *
 * - `nixos-rebuild build|switch`: fails when the file fail-build / fail-switch exists; a switch
 *   adds a system generation and points the profile at it.
 * - `nix-env --profile P --switch-generation N`: points the profile at generation N.
 * - `<generation>/bin/switch-to-configuration switch`: records which generation was activated.
 * - `systemd-run --on-active=S --unit=U CMD...`: records an armed timer in units/U.timer.
 * - `systemctl stop U.timer` / `is-active --quiet U.timer` / `reset-failed`: on those files.
 * Real tools do the rest (sh, coreutils, sha256sum, grep, curl, timeout).
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { HostPaths } from "../../components/office/scripts";

const NIXOS_REBUILD = `#!/bin/sh
set -eu
echo "nixos-rebuild $*" >> "$TEST_ROOT/calls.log"
case "$1" in
  build)
    if [ -e "$TEST_ROOT/fail-build" ]; then
      echo "building the system configuration..."
      echo "error: builder for '/nix/store/xxx-attic-server.drv' failed with exit code 1"
      exit 1
    fi
    echo "building the system configuration..."
    ;;
  switch)
    echo "building the system configuration..."
    if [ -e "$TEST_ROOT/fail-switch" ]; then
      echo "activating the configuration..."
      echo "Job for atticd.service failed because the control process exited with error code."
      echo "warning: the following units failed: atticd.service"
      exit 4
    fi
    profile="$TEST_ROOT/nix/var/nix/profiles/system"
    current=$(readlink "$profile" | sed -n 's/^system-\\([0-9]*\\)-link$/\\1/p')
    next=$((current + 1))
    "$TEST_ROOT/bin/make-generation" "$next"
    ln -sfn "system-$next-link" "$profile"
    "$profile/bin/switch-to-configuration" switch
    echo "activating the configuration..."
    ;;
  *)
    echo "nixos-rebuild stand-in: unexpected action $1" >&2
    exit 2
    ;;
esac
`;

const MAKE_GENERATION = `#!/bin/sh
set -eu
dir="$TEST_ROOT/nix/var/nix/profiles/system-$1-link/bin"
mkdir -p "$dir"
cat > "$dir/switch-to-configuration" <<EOF
#!/bin/sh
echo "switch-to-configuration generation=$1 \\$*" >> "$TEST_ROOT/calls.log"
EOF
chmod +x "$dir/switch-to-configuration"
`;

const NIX_ENV = `#!/bin/sh
set -eu
echo "nix-env $*" >> "$TEST_ROOT/calls.log"
[ "$1" = --profile ] && [ "$3" = --switch-generation ] || { echo "nix-env stand-in: unexpected $*" >&2; exit 2; }
[ -d "$(dirname "$2")/system-$4-link" ] || { echo "error: generation $4 does not exist" >&2; exit 1; }
ln -sfn "system-$4-link" "$2"
`;

const SYSTEMD_RUN = `#!/bin/sh
set -eu
echo "systemd-run $*" >> "$TEST_ROOT/calls.log"
unit=""
active=""
while [ $# -gt 0 ]; do
  case "$1" in
    --unit=*) unit=\${1#--unit=} ;;
    --on-active=*) active=\${1#--on-active=} ;;
    --description=*) ;;
    --*) ;;
    *) break ;;
  esac
  shift
done
mkdir -p "$TEST_ROOT/units"
printf 'on-active=%s\\ncommand=%s\\n' "$active" "$*" > "$TEST_ROOT/units/$unit.timer"
`;

const SYSTEMCTL = `#!/bin/sh
set -eu
echo "systemctl $*" >> "$TEST_ROOT/calls.log"
case "$1" in
  stop)
    shift
    for u in "$@"; do rm -f "$TEST_ROOT/units/$u"; done
    ;;
  is-active)
    [ "$2" = --quiet ] && shift
    [ -f "$TEST_ROOT/units/$2" ]
    ;;
  reset-failed) ;;
  *) echo "systemctl stand-in: unexpected $*" >&2; exit 2 ;;
esac
`;

export class FakeNixosHost {
  readonly root: string;
  readonly binDir: string;
  readonly paths: HostPaths;

  constructor(options: { importLine?: boolean } = {}) {
    this.root = mkdtempSync(path.join(tmpdir(), "nixos-host-"));
    this.binDir = path.join(this.root, "bin");
    mkdirSync(this.binDir);
    const tools: Record<string, string> = {
      "nixos-rebuild": NIXOS_REBUILD,
      "make-generation": MAKE_GENERATION,
      "nix-env": NIX_ENV,
      "systemd-run": SYSTEMD_RUN,
      systemctl: SYSTEMCTL,
    };
    for (const [name, text] of Object.entries(tools)) {
      writeFileSync(path.join(this.binDir, name), text);
      chmodSync(path.join(this.binDir, name), 0o755);
    }
    this.paths = {
      moduleDir: path.join(this.root, "etc/nixos/attic-infra"),
      configDir: path.join(this.root, "etc/nixos"),
      stateDir: path.join(this.root, "var/lib/attic-infra"),
      profile: path.join(this.root, "nix/var/nix/profiles/system"),
    };
    mkdirSync(this.paths.configDir, { recursive: true });
    writeFileSync(
      path.join(this.paths.configDir, "configuration.nix"),
      `{ ... }:\n{\n  imports = [ ./hardware-configuration.nix${options.importLine === false ? "" : " ./attic-infra/atticd.nix"} ];\n}\n`,
    );
    mkdirSync(path.dirname(this.paths.profile), { recursive: true });
    writeFileSync(path.join(this.root, "calls.log"), "");
    // The host starts at system generation 1.
    const gen1 = path.join(path.dirname(this.paths.profile), "system-1-link", "bin");
    mkdirSync(gen1, { recursive: true });
    writeFileSync(
      path.join(gen1, "switch-to-configuration"),
      `#!/bin/sh\necho "switch-to-configuration generation=1 $*" >> "${this.root}/calls.log"\n`,
    );
    chmodSync(path.join(gen1, "switch-to-configuration"), 0o755);
    symlinkSync("system-1-link", this.paths.profile);
  }

  calls(): string[] {
    return readFileSync(path.join(this.root, "calls.log"), "utf8").split("\n").filter(Boolean);
  }

  generation(): number {
    return Number(/^system-(\d+)-link$/.exec(readlinkSync(this.paths.profile))![1]);
  }

  /** The armed timer, if any: { "on-active": "...", command: "..." }. */
  armedTimer(unit = "attic-infra-rollback"): Record<string, string> | undefined {
    const file = path.join(this.root, "units", `${unit}.timer`);
    if (!existsSync(file)) return undefined;
    return Object.fromEntries(
      readFileSync(file, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  }

  file(rel: "module" | "module.previous" | "env" | "deployed" | "pending"): string | undefined {
    const p = {
      module: path.join(this.paths.moduleDir, "atticd.nix"),
      "module.previous": path.join(this.paths.moduleDir, "atticd.nix.previous"),
      env: path.join(this.paths.stateDir, "atticd.env"),
      deployed: path.join(this.paths.stateDir, "deployed"),
      pending: path.join(this.paths.stateDir, "pending"),
    }[rel];
    return existsSync(p) ? readFileSync(p, "utf8") : undefined;
  }

  set(flag: "fail-build" | "fail-switch", on: boolean): void {
    const f = path.join(this.root, flag);
    if (on) writeFileSync(f, "");
    else rmSync(f, { force: true });
  }
}
