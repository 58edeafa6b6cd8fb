#!/usr/bin/env bash
# Install the real programs the tests start (redis-server, nats-server, haproxy, tshark, and
# prometheus and promtool from Debian's `prometheus` package) when missing. The tests start
# their own Prometheus on a free port; the package's service is not needed (and not started
# where policy-rc.d forbids it, as in Docker images).
# Called by `make test`; needs root (CI and the dev machines run as root) or the tools present.
set -euo pipefail
need=()
for pair in redis-server:redis-server nats-server:nats-server haproxy:haproxy tshark:tshark \
            prometheus:prometheus promtool:prometheus; do
  bin=${pair%%:*} pkg=${pair##*:}
  command -v "$bin" >/dev/null 2>&1 || [[ " ${need[*]} " == *" $pkg "* ]] || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-tools: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
  exit 0  # the tests that need them fail under CI=true and skip elsewhere
fi
echo "ensure-tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# tshark asks whether non-root users may capture; the answer is preseeded, not prompted.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
