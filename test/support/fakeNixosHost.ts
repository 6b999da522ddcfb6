/**
 * A fake NixOS host on this machine, for the deploy tests over real SSH: a directory tree standing
 * in for /etc/nixos, /nix/store, the system profile, /run, /boot and /var/lib, and stand-ins for the
 * programs the deploy calls. Every call is appended to calls.log.
 *
 * What it models, and from where:
 * - Units started by systemd (a timer's service, `systemd-run` services) run in a clean
 *   environment: `env -i` with a PATH holding only a `systemctl` stand-in — on NixOS a unit's PATH
 *   is systemd's own bin/ (systemd's exec-util / nixpkgs' systemd module: no coreutils, no nix-env),
 *   and systemd passes no caller environment (systemd-run(1)). They run in their own session
 *   (setsid): killing the SSH client that started them does not stop them.
 * - `systemd-run --on-active=S --unit=U CMD` creates U.timer; the test fires it (fireTimer). An
 *   elapsed OnActive timer is inactive (systemd.timer(5)). `systemctl start U.service` runs the
 *   timer's service at once. `--wait` waits for the service and exits with its status.
 * - `<toplevel>/bin/switch-to-configuration test|switch|boot` (nixpkgs
 *   nixos/modules/system/activation/switch-to-configuration): test and switch take
 *   /run/nixos/switch-to-configuration.lock with a non-blocking flock and fail if it is held,
 *   point /run/current-system at the system and (re)start atticd; boot and switch set the boot
 *   loader default (/boot/default here). It uses absolute paths, as store programs do.
 *   The file `hold-activation` keeps an activation inside the lock (a slow activation), up to a
 *   deadline (the time scale's 120 s; then the activation fails).
 * - `nixos-rebuild build|switch [-I nixos-config=F | --flake D#h]`: builds a toplevel from the
 *   configuration's attic-infra/atticd.nix into ./result (a git flake ignores untracked files);
 *   `fail-build` makes the build fail; `fail-boot` makes `switch-to-configuration boot` fail (the
 *   boot loader install); `hold-boot` keeps it installing (run/installing-bootloader exists meanwhile).
 * - `nix-env -p P --set PATH` adds a generation; `--switch-generation N`.
 * - atticd "migrates" server.db at start (a real SQLite file with sea-orm's seaql_migrations
 *   table): a system whose module says `atticd-version: N` applies migrations m1..mN and refuses to
 *   start on a database with a newer migration ("Migration file of version ... is missing", as
 *   sea-orm's Migrator does). Module markers `atticd-fails-to-start` and `atticd-answers-503`
 *   make the new atticd fail at start or run but answer 503. A health server answers
 *   GET /<host dir>/ with 200 only while that host's atticd runs healthily. With allowHosts(),
 *   atticd's `allowed-hosts` (FACTS.md; attic server/src/api): a request whose Host header is not
 *   one of them, exactly, gets 400 "Bad Host", health check included.
 * - reboot(): kills running units, drops transient units and /run, boots /boot/default and
 *   starts its atticd.
 * - close() (the end of a scenario): every process of the host — units, SSH sessions and scripts
 *   working on it — is killed and its directory removed, so nothing of it runs into the next one.
 * Real tools do the rest (sh, coreutils, flock, sqlite3, curl, git).
 *
 * What it does not prove: a real NixOS evaluation, build or activation (no nixpkgs here), systemd's
 * own timer accuracy, sudo (the tests run as root), or that atticd's real migrations behave so.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { HostPaths, ServiceSpec } from "../../components/nixosHost/scripts";
import { endProcessesWhose } from "./processes";
import { scaled, waitFor } from "./timeScale";

const SW_TOOLS = [
  "basename",
  "cat",
  "chmod",
  "chown",
  "cmp",
  "cp",
  "curl",
  "cut",
  "date",
  "dirname",
  "env",
  "flock",
  "grep",
  "head",
  "id",
  "install",
  "ln",
  "mkdir",
  "mktemp",
  "mv",
  "readlink",
  "rm",
  "sed",
  "sha256sum",
  "sleep",
  "sqlite3",
  "tail",
  "tee",
  "timeout",
  "touch",
  "true",
  "uname",
];

function tools(root: string): Record<string, string> {
  const log = `echo "$(basename "$0") $*" >> ${root}/calls.log`;
  return {
    "bin/nixos-rebuild": `#!/bin/sh
set -eu
${log}
action=$1
shift
cfg=${root}/etc/nixos
while [ $# -gt 0 ]; do
  case "$1" in
    -I) shift; case "$1" in nixos-config=*) cfg=$(dirname "\${1#nixos-config=}") ;; esac ;;
    --flake) shift; cfg=\${1%%#*} ;;
  esac
  shift
done
echo "building the system configuration..."
if [ -e ${root}/fail-build ]; then
  echo "error: builder for '/nix/store/xxx-attic-server.drv' failed with exit code 1"
  exit 1
fi
if [ -d "$cfg/.git" ] && ! git -C "$cfg" ls-files --error-unmatch attic-infra/atticd.nix >/dev/null 2>&1; then
  echo "error: path '/nix/store/eeee-source/attic-infra/atticd.nix' does not exist"
  exit 1
fi
[ -f "$cfg/attic-infra/atticd.nix" ] || { echo "error: path '$cfg/attic-infra/atticd.nix' does not exist"; exit 1; }
top=$(${root}/lib/make-system "$cfg/attic-infra/atticd.nix")
case "$action" in
  build) ln -sfn "$top" result ;;
  switch) nix-env -p ${root}/nix/var/nix/profiles/system --set "$top"; "$top/bin/switch-to-configuration" switch ;;
  *) echo "nixos-rebuild stand-in: unexpected action $action" >&2; exit 2 ;;
esac
`,
    "bin/nix-env": `#!/bin/sh
set -eu
PATH=/usr/bin:/bin
${log}
[ "$1" = -p ] || [ "$1" = --profile ] || { echo "nix-env stand-in: unexpected $*" >&2; exit 2; }
profile=$2
dir=$(dirname "$profile")
case "$3" in
  --set)
    n=$(ls "$dir" | sed -n 's/^system-\\([0-9][0-9]*\\)-link$/\\1/p' | sort -n | tail -n 1)
    n=$((n + 1))
    ln -sfn "$4" "$dir/system-$n-link"
    ln -sfn "system-$n-link" "$profile"
    ;;
  --switch-generation)
    [ -e "$dir/system-$4-link" ] || { echo "error: generation $4 does not exist" >&2; exit 1; }
    ln -sfn "system-$4-link" "$profile"
    ;;
  *) echo "nix-env stand-in: unexpected $*" >&2; exit 2 ;;
esac
`,
    "bin/systemd-run": `#!/bin/sh
set -eu
PATH=/usr/bin:/bin
${log}
unit=""
active=""
wait=0
while [ $# -gt 0 ]; do
  case "$1" in
    --unit=*) unit=\${1#--unit=} ;;
    --on-active=*) active=\${1#--on-active=} ;;
    --wait) wait=1 ;;
    --*) ;;
    *) break ;;
  esac
  shift
done
mkdir -p ${root}/units
if [ -n "$active" ]; then
  if [ -f "${root}/units/$unit.timer" ]; then
    echo "Failed to start transient timer unit: Unit $unit.timer was already loaded or has a fragment file." >&2
    exit 1
  fi
  printf 'on-active=%s\\ncommand=%s\\n' "$active" "$*" > "${root}/units/$unit.timer"
  exit 0
fi
if [ -f "${root}/units/$unit.running" ]; then
  echo "Failed to start transient service unit: Unit $unit.service was already loaded or has a fragment file." >&2
  exit 1
fi
${root}/lib/start-unit "$unit" "$@"
[ "$wait" = 1 ] || exit 0
until [ -f "${root}/units/$unit.status" ]; do sleep 0.05; done
cat "${root}/units/$unit.log"
exit "$(cat "${root}/units/$unit.status")"
`,
    "bin/systemctl": `#!/bin/sh
set -eu
PATH=/usr/bin:/bin
${log}
verb=$1
shift
[ "\${1:-}" = --quiet ] && shift
current=$(readlink -f ${root}/run/current-system)
case "$verb" in
  stop)
    for u in "$@"; do
      case "$u" in
        *.timer) rm -f "${root}/units/$u" ;;
        atticd.service) rm -f ${root}/run/atticd.running ;;
      esac
    done
    ;;
  start|restart|try-restart)
    for u in "$@"; do
      case "$u" in
        atticd.service)
          if [ "$verb" != try-restart ] || [ -f ${root}/run/atticd.running ]; then ${root}/lib/atticd-start "$current"; fi
          ;;
        *.service)
          timer="${root}/units/\${u%.service}.timer"
          [ -f "$timer" ] || { echo "Failed to start $u: Unit $u not found." >&2; exit 5; }
          # The timer stays armed: starting its service by hand does not elapse it.
          if [ ! -f "${root}/units/\${u%.service}.running" ]; then
            # shellcheck disable=SC2046 # the command's words
            ${root}/lib/start-unit "\${u%.service}" $(sed -n 's/^command=//p' "$timer")
          fi
          ;;
      esac
    done
    ;;
  is-active)
    case "$1" in
      *.timer) [ -f "${root}/units/$1" ] ;;
      atticd.service) [ -f ${root}/run/atticd.running ] ;;
      *.service) [ -f "${root}/units/\${1%.service}.running" ] ;;
    esac
    ;;
  reset-failed) ;;
  *) echo "systemctl stand-in: unexpected $verb $*" >&2; exit 2 ;;
esac
`,
    // A service unit: clean environment, own session, output to its log, status when done.
    "lib/start-unit": `#!/bin/sh
set -eu
PATH=/usr/bin:/bin
unit=$1
shift
mkdir -p ${root}/units
rm -f "${root}/units/$unit.status"
touch "${root}/units/$unit.running"
setsid env -i PATH=${root}/systemd/bin /bin/sh -c '"$@"; echo $? > "$0.status.new"; /bin/mv "$0.status.new" "$0.status"; /bin/rm -f "$0.running"' \\
  "${root}/units/$unit" "$@" < /dev/null >> "${root}/units/$unit.log" 2>&1 &
echo $! > "${root}/units/$unit.pid"
`,
    "lib/atticd-start": `#!/bin/sh
set -eu
PATH=/usr/bin:/bin
system=$1
rm -f ${root}/run/atticd.running
[ -f "$system/atticd-version" ] || exit 0
version=$(cat "$system/atticd-version")
echo "atticd-start $(basename "$system")" >> ${root}/calls.log
[ ! -e "$system/fails-to-start" ] || { echo "atticd: error: the configuration does not load" >&2; exit 1; }
db=${root}/var/lib/atticd/server.db
mkdir -p "$(dirname "$db")"
sqlite3 "$db" 'CREATE TABLE IF NOT EXISTS seaql_migrations (version TEXT PRIMARY KEY, applied_at INTEGER)'
for v in $(sqlite3 "$db" 'SELECT version FROM seaql_migrations'); do
  if [ "\${v#m}" -gt "$version" ]; then
    echo "Error: Migration file of version '$v' is missing, this migration has been applied but its file is missing" >&2
    exit 1
  fi
done
i=1
while [ "$i" -le "$version" ]; do
  sqlite3 "$db" "INSERT OR IGNORE INTO seaql_migrations VALUES ('m$i', 0)"
  i=$((i + 1))
done
if [ -e "$system/answers-503" ]; then echo broken; else echo ok; fi > ${root}/run/atticd.running
`,
    // While the test holds a step (the file exists), up to a deadline: a hold never released fails
    // the step instead of keeping a unit running for ever.
    "lib/held": `#!/bin/sh
PATH=/usr/bin:/bin
deadline=$(($(date +%s) + ${scaled(120).seconds}))
while [ -e "${root}/$1" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "fake host: $1 was never released" >&2; exit 1; }
  sleep 0.05
done
`,
    "lib/make-system": `#!/bin/sh
set -eu
PATH=/usr/bin:/bin
module=$1
top=${root}/nix/store/$(sha256sum < "$module" | cut -c1-12)-nixos-system
if [ ! -d "$top" ]; then
  mkdir -p "$top/bin"
  cp "$module" "$top/module.nix"
  version=$(sed -n 's/.*atticd-version: *\\([0-9][0-9]*\\).*/\\1/p' "$module" | head -n 1)
  if [ -n "$version" ]; then echo "$version" > "$top/atticd-version"; fi
  if grep -q atticd-fails-to-start "$module"; then touch "$top/fails-to-start"; fi
  if grep -q atticd-answers-503 "$module"; then touch "$top/answers-503"; fi
  # The system's path (sw/): the same tools in every system, built once per host.
  if [ ! -d ${root}/nix/store/system-path ]; then
    mkdir -p ${root}/nix/store/system-path/bin
    for t in ${SW_TOOLS.join(" ")}; do
      if [ -x "/usr/bin/$t" ]; then ln -s "/usr/bin/$t" ${root}/nix/store/system-path/bin/; else ln -s "/bin/$t" ${root}/nix/store/system-path/bin/; fi
    done
    ln -s ${root}/bin/systemctl ${root}/bin/nix-env ${root}/nix/store/system-path/bin/
  fi
  ln -s ${root}/nix/store/system-path "$top/sw"
  cat > "$top/bin/switch-to-configuration" <<EOF
#!/bin/sh
PATH=/usr/bin:/bin
echo "switch-to-configuration \\$(basename "$top") \\$*" >> ${root}/calls.log
case "\\$1" in
  boot)
    if [ -e ${root}/fail-boot ]; then echo "Failed to install bootloader" >&2; exit 1; fi
    touch ${root}/run/installing-bootloader
    ${root}/lib/held hold-boot || exit 1
    rm -f ${root}/run/installing-bootloader
    ln -sfn "$top" ${root}/boot/default
    exit 0
    ;;
  test|switch) ;;
  *) echo "switch-to-configuration: unknown action \\$1" >&2; exit 1 ;;
esac
mkdir -p ${root}/run/nixos
exec 8> ${root}/run/nixos/switch-to-configuration.lock
flock -n 8 || { echo "Could not acquire lock" >&2; exit 1; }
touch ${root}/run/nixos/activating
${root}/lib/held hold-activation || exit 1
if [ "\\$1" = switch ]; then ln -sfn "$top" ${root}/boot/default; fi
ln -sfn "$top" ${root}/run/current-system
rm -f ${root}/run/nixos/activating
${root}/lib/atticd-start "$top" || { echo "warning: the following units failed: atticd.service"; exit 4; }
EOF
  chmod +x "$top/bin/switch-to-configuration"
fi
echo "$top"
`,
  };
}

export interface HostState {
  /** The atticd version of /run/current-system ("none": a system without atticd). */
  running: string;
  bootDefault: string;
  /** The live module's atticd version (undefined: no live module). */
  liveModule: string | undefined;
  /** server.db's applied migrations, e.g. "m1,m2" ("" without a database). */
  db: string;
  atticd: "ok" | "broken" | "stopped";
  pending: string | undefined;
  timerArmed: boolean;
}

/**
 * atticd's health endpoint for every fake host of this test process, in a process of its own (the
 * tests block their own event loop on ssh): GET /<host dir>/ answers 400 "Bad Host" when that host
 * has allowed hosts and the Host header is none of them, else 200 while its atticd runs healthily,
 * else 503. It exits when this process does (its stdin closes).
 */
let healthServer: Promise<string> | undefined;
function healthServerPort(): Promise<string> {
  healthServer ??= new Promise<string>((resolve) => {
    const child: ChildProcess = spawn(
      process.execPath,
      [
        "-e",
        `const fs = require("fs"), path = require("path");
         process.stdin.on("end", () => process.exit(0)).resume();
         const s = require("http").createServer((q, r) => {
           const dir = path.basename(decodeURIComponent(q.url.split("/")[1] || ""));
           let allowed = [];
           try { allowed = fs.readFileSync(path.join(${JSON.stringify(tmpdir())}, dir, "allowed-hosts"), "utf8").split("\\n").filter(Boolean); } catch {}
           if (allowed.length > 0 && !allowed.includes(q.headers.host)) { r.writeHead(400); r.end("Bad Host"); return; }
           let ok = false;
           try { ok = dir !== "" && fs.readFileSync(path.join(${JSON.stringify(tmpdir())}, dir, "run/atticd.running"), "utf8").trim() === "ok"; } catch {}
           r.writeHead(ok ? 200 : 503); r.end(ok ? "attic" : "down");
         });
         s.listen(0, "127.0.0.1", () => console.log(s.address().port));`,
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    child.unref();
    child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim()));
  });
  return healthServer;
}

export class FakeNixosHost {
  readonly paths: HostPaths;
  readonly service: ServiceSpec;
  readonly binDir: string;

  private constructor(readonly root: string) {
    this.binDir = path.join(root, "bin");
    this.paths = {
      configDir: path.join(root, "etc/nixos"),
      stateDir: path.join(root, "var/lib/attic-infra"),
      profile: path.join(root, "nix/var/nix/profiles/system"),
      runDir: path.join(root, "run"),
    };
    this.service = {
      units: ["atticd.service"],
      environmentFile: path.join(root, "var/lib/attic-infra/atticd.env"),
      database: path.join(root, "var/lib/atticd/server.db"),
      healthUrl: "",
    };
  }

  static async create(options: { importLine?: boolean } = {}): Promise<FakeNixosHost> {
    const host = new FakeNixosHost(mkdtempSync(path.join(tmpdir(), "nixos-host-")));
    const root = host.root;
    for (const dir of [
      "bin",
      "lib",
      "systemd/bin",
      "nix/store",
      "nix/var/nix/profiles",
      "etc/nixos/attic-infra",
      "run",
      "boot",
      "units",
      "var/lib/atticd",
    ]) {
      mkdirSync(path.join(root, dir), { recursive: true });
    }
    for (const [file, text] of Object.entries(tools(root))) {
      writeFileSync(path.join(root, file), text);
      chmodSync(path.join(root, file), 0o755);
    }
    // A unit's PATH: systemd's own bin/, which has systemctl and none of coreutils.
    execFileSync("ln", ["-s", path.join(root, "bin/systemctl"), path.join(root, "systemd/bin/systemctl")]);
    writeFileSync(path.join(root, "calls.log"), "");
    writeFileSync(
      path.join(root, "etc/nixos/configuration.nix"),
      `{ ... }:\n{\n  imports = [ ./hardware-configuration.nix${options.importLine === false ? "" : " ./attic-infra/atticd.nix"} ];\n}\n`,
    );
    // The host as installed: a system without atticd, booted.
    const empty = path.join(root, "empty.nix");
    writeFileSync(empty, "{ ... }: { }\n");
    const first = execFileSync(path.join(root, "lib/make-system"), [empty], { encoding: "utf8" }).trim();
    execFileSync(path.join(root, "bin/nix-env"), ["-p", host.paths.profile, "--set", first]);
    execFileSync("ln", ["-sfn", first, path.join(root, "boot/default")]);
    execFileSync("ln", ["-sfn", first, path.join(root, "run/current-system")]);
    writeFileSync(path.join(root, "calls.log"), "");
    await host.startHealth();
    return host;
  }

  private async startHealth(): Promise<void> {
    const port = await healthServerPort();
    // The server answers for the host whose directory name is the URL's path.
    this.service.healthUrl = `http://127.0.0.1:${port}/${path.basename(this.root)}/`;
  }

  /**
   * The host is gone: every process that belongs to it is killed — its units, and the SSH sessions
   * and scripts working on it (they all carry its root in their environment: PATH or the unit's
   * own) — and its directory is removed.
   */
  close(): void {
    const root = this.root;
    endProcessesWhose((environment) => environment.some((entry) => entry.includes(`${root}/`)));
    rmSync(root, { recursive: true, force: true });
  }

  /** atticd's `allowed-hosts`: from now on its endpoint answers only requests with one of these Hosts. */
  allowHosts(hosts: string[]): void {
    writeFileSync(path.join(this.root, "allowed-hosts"), hosts.map((h) => `${h}\n`).join(""));
  }

  calls(): string[] {
    return readFileSync(path.join(this.root, "calls.log"), "utf8").split("\n").filter(Boolean);
  }

  private version(system: string): string {
    const f = path.join(system, "atticd-version");
    return existsSync(f) ? `v${readFileSync(f, "utf8").trim()}` : "none";
  }

  private resolve(link: string): string {
    return execFileSync("readlink", ["-f", path.join(this.root, link)], { encoding: "utf8" }).trim();
  }

  state(): HostState {
    const live = path.join(this.paths.configDir, "attic-infra/atticd.nix");
    const liveVersion = existsSync(live) ? /atticd-version: *(\d+)/.exec(readFileSync(live, "utf8")) : null;
    const db = this.service.database!;
    const running = path.join(this.root, "run/atticd.running");
    const pending = path.join(this.paths.stateDir, "pending-deploy/id");
    return {
      running: this.version(this.resolve("run/current-system")),
      bootDefault: this.version(this.resolve("boot/default")),
      liveModule: existsSync(live) ? (liveVersion ? `v${liveVersion[1]}` : "none") : undefined,
      db: existsSync(db)
        ? execFileSync(
            "sqlite3",
            [
              "-cmd",
              `.timeout ${scaled(5).ms}`,
              db,
              "SELECT group_concat(version) FROM (SELECT version FROM seaql_migrations ORDER BY version)",
            ],
            {
              encoding: "utf8",
            },
          ).trim()
        : "",
      atticd: existsSync(running)
        ? readFileSync(running, "utf8").trim() === "ok"
          ? "ok"
          : "broken"
        : "stopped",
      pending: existsSync(pending) ? readFileSync(pending, "utf8").trim() : undefined,
      timerArmed: existsSync(path.join(this.root, "units/attic-infra-rollback.timer")),
    };
  }

  /** The profile's generation links, newest last: which systems the boot menu lists. */
  profileTarget(): string {
    return readlinkSync(this.paths.profile);
  }

  /** The atticd version of the system profile's current generation. */
  profileSystem(): string {
    return this.version(this.resolve("nix/var/nix/profiles/system"));
  }

  set(flag: "fail-build" | "fail-boot" | "hold-activation" | "hold-boot", on: boolean): void {
    const f = path.join(this.root, flag);
    if (on) writeFileSync(f, "");
    else spawnSync("rm", ["-f", f]);
  }

  /** Whether an activation is inside the activation lock right now. */
  activating(): boolean {
    return existsSync(path.join(this.root, "run/nixos/activating"));
  }

  /** The armed timer's command, if any. */
  timerCommand(): string | undefined {
    const f = path.join(this.root, "units/attic-infra-rollback.timer");
    if (!existsSync(f)) return undefined;
    return /^command=(.*)$/m.exec(readFileSync(f, "utf8"))![1];
  }

  /**
   * The rollback timer elapses: systemd starts its service (clean environment, own session).
   * Resolves with the unit's exit status and output once it has finished.
   */
  async fireTimer(): Promise<{ status: number; log: string }> {
    const command = this.timerCommand();
    if (!command) throw new Error("no rollback timer is armed");
    spawnSync("rm", ["-f", path.join(this.root, "units/attic-infra-rollback.timer")]);
    execFileSync(path.join(this.root, "lib/start-unit"), ["attic-infra-rollback", ...command.split(" ")]);
    return this.waitForUnit("attic-infra-rollback");
  }

  async waitForUnit(unit: string): Promise<{ status: number; log: string }> {
    const status = path.join(this.root, "units", `${unit}.status`);
    await waitFor(`unit ${unit} to finish`, () => existsSync(status), 60);
    return {
      status: Number(readFileSync(status, "utf8")),
      log: readFileSync(path.join(this.root, "units", `${unit}.log`), "utf8"),
    };
  }

  /** Power cycle: running units die, transient units and /run are gone, the boot default boots. */
  reboot(): void {
    const root = this.root;
    execFileSync(
      "sh",
      [
        "-c",
        `for p in "${root}"/units/*.pid; do [ -f "$p" ] && kill -KILL -- "-$(cat "$p")" 2>/dev/null; done; true
       rm -rf "${root}/units" "${root}/run"
       mkdir -p "${root}/units" "${root}/run"
       ln -sfn "$(readlink -f "${root}/boot/default")" "${root}/run/current-system"
       "${root}/lib/atticd-start" "$(readlink -f "${root}/run/current-system")" || true`,
      ],
      { stdio: "pipe" },
    );
  }
}
