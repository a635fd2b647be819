#!/usr/bin/env bash
# PostgreSQL 15 with the pgvector extension, for RAG_STORE=postgresql://… and its tests (Debian bookworm).
# pgvector is not packaged for bookworm: it is built from Debian's own source package (trixie) against
# postgresql-server-dev-15, about 30 s. Idempotent: does nothing when the extension is installed.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
PG=15
if [ -f "/usr/share/postgresql/$PG/extension/vector.control" ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ ! -f /etc/apt/sources.list.d/trixie-src.sources ]; then
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    | $SUDO tee /etc/apt/sources.list.d/trixie-src.sources >/dev/null
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "postgresql-$PG" "postgresql-server-dev-$PG" \
  dpkg-dev make gcc >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -qq --download-only pgvector >/dev/null && dpkg-source -x --no-check pgvector_*.dsc src >/dev/null)
make -s -C "$work/src" PG_CONFIG="/usr/lib/postgresql/$PG/bin/pg_config" >/dev/null
$SUDO make -s -C "$work/src" PG_CONFIG="/usr/lib/postgresql/$PG/bin/pg_config" install >/dev/null
echo "pgvector installed for PostgreSQL $PG"
