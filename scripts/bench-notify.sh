#!/usr/bin/env bash
# The round trip of a trapped call by how the supervisor waits (epoll, poll, blocking
# receive) and with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP off and on; the variants
# alternate, ROUNDS times, first with the other CPUs idle, then with one busy loop per
# other CPU (as in a -j build).
#
#   scripts/bench-notify.sh ROUNDS [CALLS]
set -euo pipefail
rounds=${1:-3}; calls=${2:-100000}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(mktemp /tmp/bench-notify.XXXXXX)
busy=()
trap 'rm -f "$bin"; for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
gcc -O2 -o "$bin" "$here/bench-notify.c"
for load in idle busy; do
    if [ "$load" = busy ]; then
        for _ in $(seq 2 "$(nproc)"); do
            (while :; do :; done) &
            busy+=($!)
        done
    fi
    for round in $(seq "$rounds"); do
        for variant in "epoll 0" "epoll 1" "poll 0" "poll 1" "recv 1"; do
            printf '%s\t%s\t' "$load" "$round"
            "$bin" $variant "$calls"
        done
    done
done
