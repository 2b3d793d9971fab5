#!/usr/bin/env bash
# Installs the Debian packages PacketTotal needs. Idempotent: does nothing when all are present.
# Usage: scripts/setup-system.sh [run|test|bench]
#   test adds Debian's Chromium (browser tests); bench adds it, the tools make_big.sh needs and tcpdump (bench/flow.py)
set -euo pipefail
profile="${1:-run}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

. /etc/os-release
codename="${VERSION_CODENAME:-}"

# libndpi4.2: the nDPI library, the second engine, loaded by its helper process (nDPI 4.2 in both
# Debian 12 and 13's main; setting ndpi)
packages=(suricata suricata-update libmagic1 python3-venv libndpi4.2)
# npm installs the offline address data (scripts/setup-geo.sh); a machine whose Node.js brings
# its own npm keeps it (Debian's npm package would conflict with it)
command -v npm >/dev/null || packages+=(npm)
case "$profile" in
  run) ;;
  test) packages+=(chromium) ;;
  bench) packages+=(chromium tshark tcpreplay tcpdump) ;;
  *) echo "usage: $0 [run|test|bench]" >&2; exit 2 ;;
esac

# Suricata parses attacker-controlled captures: when PacketTotal runs as root, Suricata runs as
# this unprivileged account (setting suricata_user).
if ! id -u packettotal-suricata >/dev/null 2>&1; then
  group=(--user-group)
  if getent group packettotal-suricata >/dev/null; then group=(--gid packettotal-suricata); fi
  $SUDO /usr/sbin/useradd --system "${group[@]}" --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin packettotal-suricata
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
suricata_ok() { command -v suricata >/dev/null && suricata -V 2>/dev/null | grep -q "version 7\."; }
if [ ${#missing[@]} -eq 0 ] && suricata_ok; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
suricata_target=()
if [ "$codename" = bookworm ]; then
  # Suricata 7 is in bookworm-backports. Reuse the mirror the machine already uses for bookworm
  # (never add another release's suite: mixed suites upgrade system packages).
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    uri=$(grep -rhs -A3 "^URIs:" /etc/apt/sources.list.d/*.sources \
            | awk '/^URIs:/{u=$2} /^Suites:.*bookworm( |$)/{print u; exit}')
    if [ -z "$uri" ]; then
      uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$uri" ] || { echo "setup: cannot find the bookworm mirror in the apt sources" >&2; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" | $SUDO tee /etc/apt/sources.list.d/packettotal-backports.sources >/dev/null
  fi
  suricata_target=(-t bookworm-backports)
fi

$SUDO apt-get update -qq
# Suricata and suricata-update first from their suite (only they and their own dependencies
# come from backports).
$SUDO apt-get install -y -qq --no-install-recommends "${suricata_target[@]}" suricata suricata-update
rest=()
for p in "${missing[@]}"; do [ "$p" = suricata ] || [ "$p" = suricata-update ] || rest+=("$p"); done
if [ ${#rest[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${rest[@]}"
fi
suricata_ok || { echo "setup: Suricata 7 is not installed: $(suricata -V 2>&1 || true)" >&2; exit 1; }
