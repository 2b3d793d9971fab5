#!/usr/bin/env bash
# Installs the offline address data (country and AS of IP addresses; docs/architecture.md) into
# a folder, by default the virtualenv's share/packettotal/geo (setting geo_data_dir).
# Idempotent: installs nothing when these versions are installed. Upgrade: raise VERSION.
# Usage: scripts/setup-geo.sh [FOLDER [PYTHON]]
#   PYTHON (one with packettotal installed) also builds the lookup database now (~16 s), rather
#   than on first use
set -euo pipefail
VERSION=2.3.2026061719
dest="${1:-.venv/share/packettotal/geo}"
python="${2:-}"
packages=("@ip-location-db/asn@$VERSION" "@ip-location-db/geo-whois-asn-country@$VERSION")

installed() { grep -qs "\"version\": \"$VERSION\"" "$dest/node_modules/$1/package.json"; }
build() {
  if [ -n "$python" ]; then
    "$python" -c 'import sys; from pathlib import Path; from packettotal.ingest import geo; geo.Locator(Path(sys.argv[1])).lookup("8.8.8.8")' "$dest"
  fi
}
if installed @ip-location-db/asn && installed @ip-location-db/geo-whois-asn-country; then
  build
  exit 0
fi
command -v npm >/dev/null || { echo "setup-geo: npm is needed (scripts/setup-system.sh installs it)" >&2; exit 1; }
mkdir -p "$dest"
npm install --prefix "$dest" --no-save --no-audit --no-fund --ignore-scripts "${packages[@]}"
rm -f "$dest"/ipgeo-*.sqlite  # built again from the new data on first use
build
