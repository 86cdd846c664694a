#!/bin/sh
# Check makescope's concise output against a plain make log of the same build (issue 4).
#
#   scripts/check-output.sh PLAIN_LOG MAKESCOPE_LOG [MAX_PERCENT]
#
# PLAIN_LOG:     `make -j2 > plain.log 2>&1`
# MAKESCOPE_LOG: `makescope make -j2 > makescope.log 2>&1` (piped: the non-terminal output)
#
# Checks that every line of PLAIN_LOG containing `warning:` or `error:` appears, whole,
# in MAKESCOPE_LOG, and that MAKESCOPE_LOG is at most MAX_PERCENT (default 5) percent
# of PLAIN_LOG's size. Prints the figures; exits 1 if either check fails, 2 on bad use.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 PLAIN_LOG MAKESCOPE_LOG [MAX_PERCENT]" >&2
    exit 2
fi
plain=$1 ours=$2 max=${3:-5}
for f in "$plain" "$ours"; do
    [ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export LC_ALL=C
grep -a -e 'warning:' -e 'error:' "$plain" | sort -u > "$tmp/wanted" || true
sort -u "$ours" > "$tmp/have"
comm -23 "$tmp/wanted" "$tmp/have" > "$tmp/missing"

wanted=$(wc -l < "$tmp/wanted")
missing=$(wc -l < "$tmp/missing")
plain_size=$(wc -c < "$plain")
our_size=$(wc -c < "$ours")
status=0

echo "warning/error lines in the plain log: $wanted distinct; missing from makescope's output: $missing"
if [ "$missing" -gt 0 ]; then
    echo "missing lines (first 20):"
    head -n 20 "$tmp/missing" | sed 's/^/  /'
    status=1
fi

percent=$(awk -v a="$our_size" -v b="$plain_size" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f", 100 * a / b }')
ok=$(awk -v a="$our_size" -v b="$plain_size" -v m="$max" 'BEGIN { print (b > 0 && 100 * a <= m * b) ? "yes" : "no" }')
echo "size: makescope $our_size bytes, plain $plain_size bytes: $percent% (limit $max%)"
[ "$ok" = yes ] || status=1

if [ "$status" -eq 0 ]; then echo "check-output: OK"; else echo "check-output: FAILED"; fi
exit "$status"
