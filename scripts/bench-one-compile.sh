#!/usr/bin/env bash
# The cost of recording one real compile: N copies of one glibc compile (taken from a
# record) run with plain make and under makescope, alternating, -j1.
#
#   scripts/bench-one-compile.sh RECORD N ROUNDS [VARIANT...]
#   RECORD: a glibc build's .makescope/db.sqlite (its first CC command with `-o` is used)
#   VARIANT: plain | notrace | traced | traponly (default: plain notrace)
set -euo pipefail
record=$1; n=$2; rounds=$3; shift 3
variants=("$@"); [ ${#variants[@]} -gt 0 ] || variants=(plain notrace)
here=$(cd "$(dirname "$0")/.." && pwd)
makescope=${MAKESCOPE:-$here/target/release/makescope}
work=$(mktemp -d /tmp/bench-one-compile.XXXXXX)
trap 'rm -rf "$work"' EXIT
sqlite3 -separator $'\t' "$record" \
    "SELECT directory, command FROM commands WHERE label LIKE 'CC %' AND command LIKE '% -o %' LIMIT 1" > "$work/cmd"
python3 - "$work" "$n" <<'PY'
import re, sys
work, n = sys.argv[1], int(sys.argv[2])
d, cmd = open(work + '/cmd').read().rstrip('\n').split('\t', 1)
cmd = re.sub(r' -o \S+', ' -o $@', cmd)
cmd = re.sub(r'-MF \S+', '-MF $@.dt', cmd)
cmd = re.sub(r'-MT \S+', '-MT $@', cmd)
with open(work + '/Makefile', 'w') as f:
    f.write('all: ' + ' '.join(f'{work}/o{i}.o' for i in range(n)) + '\n')
    f.write(f'{work}/o%.o:\n\t{cmd}\n')
open(work + '/dir', 'w').write(d)
PY
dir=$(cat "$work/dir")
printf 'variant\tround\twall_s\tcpu_s\tuser_s\tsys_s\n'
for round in $(seq 1 "$rounds"); do
    for variant in "${variants[@]}"; do
        rm -f "$work"/*.o "$work"/*.dt; rm -rf "$work/.makescope"
        case $variant in
            plain) cmd=(make -C "$dir" -f "$work/Makefile" -j1) ;;
            notrace) cmd=("$makescope" --db "$work/.makescope/db.sqlite" make --no-trace -C "$dir" -f "$work/Makefile" -j1) ;;
            traced) cmd=("$makescope" --db "$work/.makescope/db.sqlite" make -C "$dir" -f "$work/Makefile" -j1) ;;
            traponly) cmd=("$makescope" --db "$work/.makescope/db.sqlite" make --trap-only -C "$dir" -f "$work/Makefile" -j1) ;;
            *) echo "unknown variant $variant" >&2; exit 2 ;;
        esac
        /usr/bin/time -f '%e %U %S' -o "$work/time" "${cmd[@]}" > /dev/null 2>&1
        read -r wall user sys < "$work/time"
        printf '%s\t%s\t%s\t%.2f\t%s\t%s\n' "$variant" "$round" "$wall" "$(echo "$user + $sys" | bc)" "$user" "$sys"
    done
done
