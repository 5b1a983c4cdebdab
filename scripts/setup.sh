#!/usr/bin/env bash
# Installs what vecscale's sandbox, tests and demo need on Debian bookworm, skipping whatever is already present:
#   PostgreSQL 15 server + contrib (postgres_fdw, dblink) from Debian, plpgsql_check (the test suite checks every
#   function vecscale creates with it), and pgvector built from Debian's own source package (bookworm has no pgvector
#   binary package; trixie has its source, which builds against the bookworm server headers).
# Idempotent. As root it installs; as another user it only checks and says what to install.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
log() { printf 'setup: %s\n' "$*" >&2; }

pg_bindir() {
  if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then echo "$PG_BIN"; return; fi
  if [ -x "/usr/lib/postgresql/$PG_MAJOR/bin/initdb" ]; then echo "/usr/lib/postgresql/$PG_MAJOR/bin"; return; fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  return 1
}

have_server()  { pg_bindir >/dev/null 2>&1; }
sharedir()     { echo "/usr/share/postgresql/$PG_MAJOR"; }
have_fdw()     { [ -f "$(sharedir)/extension/postgres_fdw.control" ]; }
have_vector()  { [ -f "$(sharedir)/extension/vector.control" ]; }
have_check()   { [ -f "$(sharedir)/extension/plpgsql_check.control" ]; }
# PgBouncer: the tests put one in front of a sandbox cluster, to show vecscale refuses a transaction pooler.
have_bouncer() { [ -x /usr/sbin/pgbouncer ]; }

missing=()
have_server || missing+=("postgresql-$PG_MAJOR")
have_fdw    || missing+=("postgresql-contrib")
have_check  || missing+=("postgresql-$PG_MAJOR-plpgsql-check")
have_vector || missing+=("pgvector")
have_bouncer || missing+=("pgbouncer")

if [ ${#missing[@]} -eq 0 ]; then
  log "PostgreSQL $PG_MAJOR, postgres_fdw, plpgsql_check, pgvector and pgbouncer are present ($(pg_bindir))"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  cat >&2 <<MSG
setup: missing: ${missing[*]}
setup: run this script as root (sudo bash scripts/setup.sh), or install by hand:
  apt-get install postgresql-$PG_MAJOR postgresql-contrib postgresql-$PG_MAJOR-plpgsql-check pgbouncer postgresql-server-dev-$PG_MAJOR build-essential
  then build pgvector from source (https://github.com/pgvector/pgvector#linux-and-mac) against pg_config of PostgreSQL $PG_MAJOR.
MSG
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update() { [ "$apt_updated" -eq 1 ] || { log "apt-get update"; apt-get update -qq; apt_updated=1; }; }

if ! have_server || ! have_fdw || ! have_check || ! have_bouncer; then
  apt_update
  log "installing postgresql-$PG_MAJOR postgresql-contrib postgresql-$PG_MAJOR-plpgsql-check pgbouncer"
  apt-get install -y -qq "postgresql-$PG_MAJOR" postgresql-contrib "postgresql-$PG_MAJOR-plpgsql-check" pgbouncer >/dev/null
fi

if ! have_vector; then
  # A deb-src entry for the trixie suite of the archive this machine already uses.
  src_list=/etc/apt/sources.list.d/vecscale-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" > "$src_list"
    apt_updated=0
  fi
  apt_update
  log "installing build dependencies for pgvector"
  apt-get install -y -qq "postgresql-server-dev-$PG_MAJOR" build-essential dpkg-dev >/dev/null
  work=$(mktemp -d)
  chmod 755 "$work"   # apt's _apt user downloads into it
  trap 'rm -rf "$work"' EXIT
  log "building pgvector from Debian's source package"
  (
    cd "$work"
    apt-get source --download-only -qq pgvector >/dev/null
    tar xzf pgvector_*.orig.tar.gz
    dir=$(find . -maxdepth 1 -type d -name 'pgvector-*' | head -n1)
    make -s -C "$dir" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" >/dev/null
    make -s -C "$dir" PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" install >/dev/null
  )
fi

have_vector || { log "pgvector is still missing after the build"; exit 1; }
log "PostgreSQL $PG_MAJOR, postgres_fdw, plpgsql_check and pgvector are ready ($(pg_bindir))"
