#!/usr/bin/env bash
# Make a fresh, configured glibc 2.36 build directory: scripts/glibc-fresh.sh DIR
# (the source comes from Debian's glibc-source package, unpacked beside DIR).
set -euo pipefail
dir=$(realpath -m "$1")
src=$(dirname "$dir")/glibc-2.36
if [ ! -d "$src" ]; then
    [ -f /usr/src/glibc/glibc-2.36.tar.xz ] || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq glibc-source gawk bison texinfo python3
    }
    tar -C "$(dirname "$dir")" -xf /usr/src/glibc/glibc-2.36.tar.xz
fi
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
"$src/configure" --prefix=/usr --disable-werror > configure.log 2>&1
