set -eu
# attic-infra: deploy a new system, pending confirmation. Generated; see components/nixosHost/scripts.ts.
CONFIG_DIR='/etc/nixos'
STATE='/var/lib/attic-infra'
PENDING='/var/lib/attic-infra/pending-deploy'
PROFILE='/nix/var/nix/profiles/system'
RUN='/run'
ENV_FILE='/var/lib/attic-infra/atticd.env'
DB=''
HEALTH_URL='http://127.0.0.1:8080/'
fail() {
  echo "attic-infra: $*" >&2
  exit 1
}
command -v nixos-rebuild >/dev/null 2>&1 || fail "nixos-rebuild not found on $(uname -n): this is not a NixOS host"
if ! grep -rqs --include='*.nix' --exclude-dir=attic-infra 'attic-infra/atticd\.nix' "$CONFIG_DIR"; then
  fail "no .nix file in $CONFIG_DIR imports ./attic-infra/atticd.nix; add \"imports = [ ./attic-infra/atticd.nix ];\" to the host's configuration (docs/office.md, one-time host setup)"
fi
DEPLOY_ID=9304a60d28d6da84f30d341a50fcfb35
umask 077
mkdir -p "$STATE"
chmod 0700 "$STATE"
lock() {
  exec 9>"$STATE/lock"
  flock -w 60 9 || fail "another attic-infra deploy, confirm or rollback has held $STATE/lock on $(uname -n) for 60 s; wait for it to finish (journalctl -u attic-infra-rollback*), then run pulumi up again"
}
lock
# The secret environment file passes through here: inside the state directory (0700), never /tmp.
# A work directory that a killed session left behind is removed by the next one, under the lock.
work="$STATE/work"
rm -rf "$work"
mkdir -m 0700 "$work"
trap 'rm -rf "$work"' EXIT
cat > "$work/env"
timer_armed() { systemctl is-active --quiet attic-infra-rollback.timer; }
# Runs the pending deploy's rollback in its own unit (it survives this session) and waits for it.
run_rollback() {
  rm -f "$STATE/rollback.result"
  # The rollback takes the deploy lock itself.
  exec 9>&-
  if timer_armed; then
    systemctl start attic-infra-rollback.service
  else
    systemd-run --unit=attic-infra-rollback-now --collect --quiet /bin/sh "$PENDING/rollback.sh"
  fi
  waited=0
  until [ -f "$STATE/rollback.result" ]; do
    [ "$waited" -lt 1200 ] || return 1
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
    fail "$1; the host was rolled back (journalctl -u attic-infra-rollback). Fix the cause and run pulumi up again."
  fi
  fail "$1, and the rollback FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
}
current() { readlink -f "$RUN/current-system"; }
wait_for_activation() {
  mkdir -p "$RUN/nixos"
  waited=0
  while systemctl is-active --quiet attic-infra-activate.service; do
    [ "$waited" -lt 900 ] || break
    sleep 0.1
    waited=$((waited + 1))
  done
  timeout 90 flock "$RUN/nixos/switch-to-configuration.lock" true \
    || fail "another activation still holds $RUN/nixos/switch-to-configuration.lock after 90 s (a nixos-rebuild on the host?); wait for it, then run pulumi up again"
}
health() {
  deadline=$(($(date +%s) + 30))
  until curl -fsS -o /dev/null --max-time 5 -H 'Host: cache.example.com' "$HEALTH_URL" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.25
  done
}

if [ "$(cat "$STATE/deployed" 2>/dev/null || true)" = "$DEPLOY_ID" ] && [ ! -e "$PENDING/id" ] \
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
    run_rollback || fail "rolling back the interrupted deploy $DEPLOY_ID FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
  elif timer_armed; then
    fail "deploy $pending, not this one ($DEPLOY_ID), awaits confirmation on $(uname -n) and its rollback is armed. Let it roll back (journalctl -u attic-infra-rollback) or roll back now with: systemctl start attic-infra-rollback.service — then run pulumi up again"
  else
    echo "attic-infra: deploy $pending was left unconfirmed without an armed rollback (the host rebooted inside the window, or a rollback failed); rolling it back first" >&2
    run_rollback || fail "rolling back the unconfirmed deploy $pending FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
  fi
elif timer_armed; then
  fail "a rollback timer (attic-infra-rollback.timer) is armed on $(uname -n) but no deploy is pending; an earlier attic-infra version armed it. Let it fire or stop it (systemctl stop attic-infra-rollback.timer), then run pulumi up again"
fi

wait_for_activation
previous=$(current)
boot_previous=$(readlink -f "$PROFILE")

# The module is built from a copy of the configuration: the live import path keeps the confirmed
# module until the confirm, so a reboot or a manual rebuild meanwhile uses that one.
rm -rf "$PENDING"
mkdir -p "$PENDING"
# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '%s' '# Generated by attic-infra (stack vps). Do not edit: `pulumi up` replaces this file.
# Secrets are not here: atticd and the dump job read them from the environment file.
# Firewall: this module opens 80/443 and SSH from sshFrom; it cannot close ports the host'\''s
# own configuration opens elsewhere (docs/vps.md).
{ config, lib, pkgs, ... }:
{
  assertions = [
    {
      assertion = config.networking.firewall.enable;
      message = "attic-infra: this host is public; its module relies on the NixOS firewall (SSH only from sshFrom). Set networking.firewall.enable = true.";
    }
    {
      assertion = !(config.services.firewalld.enable or false);
      message = "attic-infra: the SSH rules are written for the iptables or nftables NixOS firewall, not firewalld. Allow SSH from sshFrom in firewalld yourself, or switch the backend.";
    }
  ];
  services = {
    atticd = {
      enable = true;
      mode = "monolithic";
      environmentFile = "/var/lib/attic-infra/atticd.env";
      settings = {
        listen = "127.0.0.1:8080";
        allowed-hosts = [
          "cache.example.com"
        ];
        api-endpoint = "https://cache.example.com/";
        soft-delete-caches = false;
        require-proof-of-possession = true;
        chunking = {
          nar-size-threshold = 65536;
          min-size = 16384;
          avg-size = 65536;
          max-size = 262144;
        };
        compression = {
          type = "zstd";
          level = 8;
        };
        garbage-collection = {
          interval = "12 hours";
          default-retention-period = "90 days";
        };
        database = {
          url = "postgresql:///atticd?host=/run/postgresql";
          heartbeat = true;
        };
        storage = {
          type = "s3";
          region = "eu-central-003";
          bucket = "example-attic";
          endpoint = "https://s3.eu-central-003.backblazeb2.com";
        };
      };
    };
    openssh = {
      openFirewall = lib.mkForce false;
    };
    postgresql = {
      enable = true;
      ensureDatabases = [
        "atticd"
      ];
      ensureUsers = [
        {
          name = "atticd";
          ensureDBOwnership = true;
        }
      ];
      authentication = lib.mkBefore '\'''\''
        local atticd atticd peer
      '\'''\'';
    };
    caddy = {
      enable = true;
      email = "ops@example.com";
      virtualHosts = {
        "cache.example.com" = {
          extraConfig = '\'''\''
            request_body {
              max_size 64GiB
            }
            reverse_proxy 127.0.0.1:8080 {
              flush_interval -1
              transport http {
                read_timeout 3600s
                write_timeout 3600s
              }
            }
          '\'''\'';
        };
      };
    };
  };
  networking = {
    firewall = {
      allowedTCPPorts = [
        80
        443
      ];
      allowedUDPPorts = [
        443
      ];
      extraCommands = lib.mkIf (!config.networking.nftables.enable) (lib.concatStrings [
        '\'''\''
          iptables -w -A nixos-fw -p tcp --dport 22 -s 198.51.100.0/24 -j nixos-fw-accept
        '\'''\''
        (lib.optionalString config.networking.enableIPv6 '\'''\''
          ip6tables -w -A nixos-fw -p tcp --dport 22 -s 2001:db8:100::/48 -j nixos-fw-accept
        '\'''\'')
      ]);
      extraInputRules = lib.mkIf config.networking.nftables.enable '\'''\''
        ip saddr { 198.51.100.0/24 } tcp dport 22 accept
        ip6 saddr { 2001:db8:100::/48 } tcp dport 22 accept
      '\'''\'';
    };
  };
  environment = {
    systemPackages = [
      pkgs.curl
    ];
  };
  systemd = {
    services = {
      atticd-dump = {
        description = "Dump the atticd database (every cache'\''s signing key is in it)";
        after = [
          "postgresql.service"
          "postgresql-setup.service"
        ];
        requires = [
          "postgresql.service"
        ];
        path = [
          config.services.postgresql.package
          pkgs.coreutils
          pkgs.findutils
          pkgs.gawk
          pkgs.util-linux
          pkgs.awscli2
        ];
        environment = {
          AWS_DEFAULT_REGION = "eu-central-003";
          AWS_REQUEST_CHECKSUM_CALCULATION = "when_required";
          AWS_RESPONSE_CHECKSUM_VALIDATION = "when_required";
        };
        serviceConfig = {
          Type = "oneshot";
          UMask = "0077";
          EnvironmentFile = "/var/lib/attic-infra/atticd.env";
        };
        script = '\'''\''
          set -eu
          dir='\''/var/backup/atticd'\''
          keep_days=14
          mkdir -p "$dir"
          chmod 0700 "$dir"
          stamp=$(date -u +%Y%m%dT%H%M%SZ)
          name="atticd-$stamp.pgdump"
          tmp="$dir/.$name.partial"
          trap '\''rm -f "$tmp"'\'' EXIT
          runuser -u postgres -- pg_dump --format=custom atticd >"$tmp"
          mv "$tmp" "$dir/$name"
          echo "dumped to $dir/$name"
          cutoff=$(date -u -d "-$keep_days days" +%Y%m%dT%H%M%SZ)
          # Names of dumps (one a line on stdin) stamped before the cutoff.
          expired() {
            awk -v cutoff="$cutoff" '\''/^atticd-[0-9]+T[0-9]+Z\./ { s = substr($0, 8, 16); if (s < cutoff) print }'\''
          }
          find "$dir" -maxdepth 1 -name '\''atticd-*'\'' -printf '\''%f\n'\'' | expired | while read -r old; do
            rm -f -- "$dir/$old"
            echo "deleted $dir/$old"
          done
          dest='\''s3://example-attic/attic-infra/db-dumps/'\''
          aws s3 cp --only-show-errors --endpoint-url '\''https://s3.eu-central-003.backblazeb2.com'\'' "$dir/$name" "$dest$name"
          echo "copied to $dest$name"
          aws s3 ls --endpoint-url '\''https://s3.eu-central-003.backblazeb2.com'\'' "$dest" | awk '\''{ print $4 }'\'' | expired | while read -r old; do
            aws s3 rm --only-show-errors --endpoint-url '\''https://s3.eu-central-003.backblazeb2.com'\'' "$dest$old"
            echo "deleted $dest$old"
          done
        '\'''\'';
      };
      atticd-dump-before-upgrade = {
        description = "Dump the atticd database before a new atticd migrates it";
        before = [
          "atticd.service"
        ];
        requiredBy = [
          "atticd.service"
        ];
        after = [
          "postgresql.service"
          "postgresql-setup.service"
        ];
        requires = [
          "postgresql.service"
        ];
        path = [
          config.services.postgresql.package
          pkgs.coreutils
          pkgs.util-linux
        ];
        environment = {
          ATTICD_PACKAGE = toString config.services.atticd.package;
        };
        serviceConfig = {
          Type = "oneshot";
          UMask = "0077";
        };
        script = '\'''\''
          set -eu
          dir='\''/var/backup/atticd'\''
          marker='\''/var/lib/attic-infra/atticd-package-dumped'\''
          if [ "$(cat "$marker" 2>/dev/null || true)" = "$ATTICD_PACKAGE" ]; then
            echo "atticd unchanged since the last pre-upgrade dump"
            exit 0
          fi
          if [ "$(runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = '\''atticd'\''")" != 1 ]; then
            echo "no atticd database yet; nothing to dump"
            exit 0
          fi
          mkdir -p "$dir" "$(dirname "$marker")"
          chmod 0700 "$dir"
          name="atticd-$(date -u +%Y%m%dT%H%M%SZ).before-upgrade.pgdump"
          tmp="$dir/.$name.partial"
          trap '\''rm -f "$tmp"'\'' EXIT
          runuser -u postgres -- pg_dump --format=custom atticd >"$tmp"
          mv "$tmp" "$dir/$name"
          printf '\''%s
          '\'' "$ATTICD_PACKAGE" >"$marker"
          echo "dumped to $dir/$name before atticd $ATTICD_PACKAGE starts"
        '\'''\'';
      };
    };
    timers = {
      atticd-dump = {
        wantedBy = [
          "timers.target"
        ];
        timerConfig = {
          OnCalendar = "daily";
          Persistent = true;
          RandomizedDelaySec = "30m";
        };
      };
    };
  };
}
' > "$PENDING/module.nix"
chmod 0644 "$PENDING/module.nix"
cp -a "$CONFIG_DIR/." "$work/config"
mkdir -p "$work/config/attic-infra"
cp "$PENDING/module.nix" "$work/config/attic-infra/atticd.nix"
if [ -d "$work/config/.git" ]; then
  # A flake in a git repository ignores untracked files.
  git -C "$work/config" -c safe.directory='*' add --intent-to-add -- 'attic-infra/atticd.nix' \
    || fail "could not add attic-infra/atticd.nix to the flake's git index"
fi
cd "$work"
if ! timeout 1800 nixos-rebuild build -I nixos-config="$work/config/configuration.nix" > "$work/build.log" 2>&1; then
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
printf '%s' '#!/bin/sh
# attic-infra: roll back deploy 9304a60d28d6da84f30d341a50fcfb35 unless it was confirmed. Run by systemd
# (unit attic-infra-rollback), never by an SSH session. Generated; see components/nixosHost/scripts.ts.
set -eu
PATH='\''@PREVIOUS@/sw/bin:@NEXT@/sw/bin'\''
export PATH
DEPLOY_ID=9304a60d28d6da84f30d341a50fcfb35
PREVIOUS='\''@PREVIOUS@'\''
MODULE='\''/etc/nixos/attic-infra/atticd.nix'\''
STATE='\''/var/lib/attic-infra'\''
PENDING='\''/var/lib/attic-infra/pending-deploy'\''
PROFILE='\''/nix/var/nix/profiles/system'\''
RUN='\''/run'\''
ENV_FILE='\''/var/lib/attic-infra/atticd.env'\''
HEALTH_URL='\''http://127.0.0.1:8080/'\''
CHECK_HEALTH=1
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
step="re-activating $PREVIOUS"
"$PREVIOUS/bin/switch-to-configuration" test
if [ "$restart" = 1 ] && [ "$CHECK_HEALTH" = 1 ]; then
  # Not restarted by the activation (their definitions did not change), yet their environment
  # file or database did.
  systemctl restart '\''atticd.service'\''
fi
step="verifying the running system"
[ "$(readlink -f "$RUN/current-system")" = "$PREVIOUS" ]
if [ "$CHECK_HEALTH" = 1 ]; then
  step="checking $HEALTH_URL"
  tries=0
  until curl -fsS -o /dev/null --max-time 5 -H '\''Host: cache.example.com'\'' "$HEALTH_URL"; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ]
    sleep 2
  done
fi
step="recording the rollback"
rm -rf "$STATE/rolled-back"
mv "$PENDING" "$STATE/rolled-back"
systemctl stop attic-infra-rollback.timer 2>/dev/null || true
echo "ok $DEPLOY_ID" > "$STATE/rollback.result"
echo "attic-infra: rolled back deploy $DEPLOY_ID; the host runs $PREVIOUS again"
' | sed -e "s|@PREVIOUS@|$previous|g" -e "s|@NEXT@|$toplevel|g" -e "s|^CHECK_HEALTH=1$|CHECK_HEALTH=$check_health|" > "$PENDING/rollback.sh"
chmod 0700 "$PENDING/rollback.sh"

systemctl stop attic-infra-rollback.timer attic-infra-rollback.service 2>/dev/null || true
systemctl reset-failed attic-infra-rollback.timer attic-infra-rollback.service 2>/dev/null || true
echo "$DEPLOY_ID" > "$PENDING/id"
systemd-run --on-active=180 --unit=attic-infra-rollback \
  --description="attic-infra: roll back deploy $DEPLOY_ID unless confirmed" /bin/sh "$PENDING/rollback.sh" >/dev/null
echo "armed: unless confirmed within 180 s, the host rolls back to $previous"
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
if ! timeout 90 systemd-run --unit=attic-infra-activate --collect --wait --pipe --quiet \
  "$toplevel/bin/switch-to-configuration" test > "$work/activate.log" 2>&1; then
  tail -n 40 "$work/activate.log" >&2
  roll_back_and_fail "activating $toplevel failed (last lines above)"
fi
# The rollback may have fired meanwhile (this session could have been cut off and linger): act
# on the host again only under the lock, and only while this deploy is still the pending one.
lock
[ "$(cat "$PENDING/id" 2>/dev/null || true)" = "$DEPLOY_ID" ]   || fail "deploy $DEPLOY_ID was rolled back while it activated (the dead-man fired: journalctl -u attic-infra-rollback); run pulumi up again"
if [ "$env_changed" = 1 ]; then systemctl restart 'atticd.service'; fi
exec 9>&-
health || roll_back_and_fail "$HEALTH_URL did not answer within 30 s of the activation"
echo "activated $toplevel; $HEALTH_URL answers; awaiting the confirm over a new connection"
