# shellcheck shell=sh disable=SC2154
# Runs on the VPS host after the deploy is confirmed (module.ts certificateWaitScript): waits,
# bounded, until the proxy serves https://<domain>/ with a certificate curl trusts, reaching the
# proxy on loopback so the host's own DNS does not matter. SC2154: the header assigns url, domain,
# wait_seconds and unit (the proxy's, whose journal says why there is no certificate).

deadline=$(($(date +%s) + wait_seconds))
while :; do
  if err=$(curl -fsS -o /dev/null --max-time 10 --resolve "$domain:443:127.0.0.1" "$url" 2>&1); then break; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "attic-infra: $domain has no valid certificate after $wait_seconds s ($err). atticd itself is deployed. Check that the A/AAAA records of $domain point at this host and that port 80 is reachable (journalctl -u $unit), then run pulumi up again." >&2
    exit 1
  fi
  sleep 5
done
echo "$url answers with a valid certificate"
