#!/usr/bin/env bash
# The installed layout: package the crate as crates.io would get it (`cargo package`),
# `cargo install` that package into a fresh prefix, and record a traced build of the
# bundled example with the installed binary alone: the make plugin, the shim and the
# tracer's helper travel inside it. Part of scripts/test.sh.
# Usage: scripts/check-install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Debug builds in the tree's own target directory: the dependencies are already built.
export CARGO_TARGET_DIR=$PWD/target
cargo package --quiet --locked --no-verify --allow-dirty
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
tar -xzf "target/package/makescope-$version.crate" -C "$work"
cargo install --quiet --locked --debug --root "$work/prefix" --path "$work/makescope-$version"
bin=$work/prefix/bin/makescope
[ "$(ls "$work/prefix/bin")" = makescope ] || { echo "installed more than makescope: $(ls "$work/prefix/bin")"; exit 1; }
cp -r examples/hello "$work/hello"
cd "$work/hello"
# Nothing of the source tree on the way: another directory, a PATH without target/.
env -i HOME="$work" PATH=/usr/bin:/bin "$bin" make -j2 all >"$work/out.txt" 2>&1 \
    || { cat "$work/out.txt"; exit 1; }
reads=$(sqlite3 .makescope/db.sqlite \
    "SELECT count(*) FROM file_accesses WHERE kind = 'read' AND path LIKE '%/greet.h'")
[ "$reads" -gt 0 ] || { echo "the installed makescope recorded no read of greet.h"; exit 1; }
plugin=$(env -i HOME="$work" PATH=/usr/bin:/bin "$bin" plugin)
printf 'load %s\nall:\n\t@echo $(python 6*7)\n' "$plugin" > plugin.mk
[ "$(make -s -f plugin.mk)" = 42 ] || { echo "plain make could not use the installed plugin"; exit 1; }
echo "check-install: makescope $version packaged, installed and recorded a traced build"
