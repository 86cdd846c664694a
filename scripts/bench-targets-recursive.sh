#!/bin/sh
# Time `makescope targets --recursive` over glibc's subdirectories, cold (empty cache)
# and warm (nothing changed). Until the plugin records dumps, the record is synthetic:
# one `make` row per subdirectory (as glibc's top Makefile starts them:
# `make subdir=D ..=../ objdir=BUILD` in SRC/D), without a dump, so the cold run takes
# makescope's fallback (one safe `make -p` per subdirectory).
# Usage: scripts/bench-targets-recursive.sh [MAX_SUBDIRS]  (default: all)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${GLIBC_BUILD:-/work/glibc/build}
src=${GLIBC_SRC:-/work/glibc/glibc-2.36}
max=${1:-1000}
makescope=${MAKESCOPE:-$here/target/release/makescope}
work=$(mktemp -d)
subdirs=$(cd "$build" && LC_ALL=C make -npq .DEFAULT 2>/dev/null | sed -n 's/^sorted-subdirs := //p' | head -1)
python3 - "$work/record.sqlite" "$here/src/store/schema_v1.sql" "$build" "$src" "$max" $subdirs <<'PY'
import sqlite3, sys
db, schema, build, src, limit, *subdirs = sys.argv[1:]
c = sqlite3.connect(db)
c.executescript(open(schema).read())
c.execute("INSERT INTO build (id, argv, directory, started_ns, state, traced, makescope_version) VALUES (1, 'make', ?, 0, 'complete', 0, 'bench')", (build.encode(),))
c.execute("INSERT INTO make (build_id, pid, level, directory, argv, started_ns) VALUES (1, 1, 0, ?, ?, 0)", (build.encode(), b"make"))
c.execute("INSERT INTO make (build_id, pid, level, directory, argv, started_ns) VALUES (1, 2, 1, ?, ?, 0)", (src.encode(), b"make\0-r\0-C\0" + src.encode() + b"\0objdir=" + build.encode() + b"\0all"))
for i, d in enumerate(subdirs[:int(limit)]):
    argv = b"\0".join([b"make", b"subdir=" + d.encode(), b"..=../", b"objdir=" + build.encode(), b"subdir_lib"])
    c.execute("INSERT INTO make (build_id, pid, level, directory, argv, started_ns) VALUES (1, ?, 2, ?, ?, 0)", (10 + i, (src + "/" + d).encode(), argv))
c.commit()
PY
export MAKESCOPE_CACHE_DIR="$work/cache"
cd "$build"
echo "subdirectories: $(echo $subdirs | wc -w) (using at most $max), load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "cold: %e s wall, %U s user, %S s sys" "$makescope" --db "$work/record.sqlite" targets --recursive > "$work/cold.txt" 2>"$work/cold.err" || true
tail -1 "$work/cold.err"
for i in 1 2 3; do
    /usr/bin/time -f "warm: %e s wall, %U s user, %S s sys" "$makescope" --db "$work/record.sqlite" targets --recursive > "$work/warm.txt" 2>"$work/warm.err"
    tail -1 "$work/warm.err"
done
head -c 2000 "$work/cold.err"; cmp -s "$work/cold.txt" "$work/warm.txt" && echo "warm listing identical to cold"
echo "sections: $(grep -c '^# .*(make level' "$work/warm.txt"), lines: $(wc -l < "$work/warm.txt"), cache: $(du -sh "$work/cache" | cut -f1)"
rm -rf "$work"
