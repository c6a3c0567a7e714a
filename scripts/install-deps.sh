#!/usr/bin/env bash
# Installs what Skiff needs on a fresh Debian machine, as root: the OCI runtime and monitor,
# the registry, image tools, kernel networking tools, protoc; then `npm ci` when the lock file
# changed. Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(runc conmon docker-registry skopeo busybox-static iproute2 nftables util-linux procps attr protobuf-compiler tini openssl iperf3 conntrack)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
stamp=node_modules/.skiff-lock-hash
hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
  npm ci --no-audit --no-fund
  echo "$hash" > "$stamp"
fi
