#!/usr/bin/env bash
# Every test, Rust and Python, on a fresh machine of this kind: installs what the tests
# need (Debian packages, PyPI packages), then runs them. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in make gcc strace tmux sqlite3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)  # `export ninja`'s tests
[ -e /usr/include/gnumake.h ] || missing+=(make)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)  # the shim's libc (build.rs)
# The views' tests (tests/integration/views.rs): Graphviz reads every `export dot`,
# headless Chromium opens the report, coverage sees zlib used and libxml2 untouched.
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/include/zlib.h ] || missing+=(zlib1g-dev)
[ -d /usr/include/libxml2 ] || missing+=(libxml2-dev)
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo build --quiet --bins
# Lints are part of the tests: Cargo.toml's [lints] (every unsafe block says why it is
# sound) and clippy's defaults, as errors.
cargo clippy --quiet --all-targets -- -D warnings
cargo test

# `cargo install` of the crate as packaged, and a traced build by the installed binary.
scripts/check-install.sh

# The Python package as users get it: a wheel (maturin builds it in pip's isolated
# environment), installed into a fresh virtual environment by a pip that finds no Rust
# on its PATH; then its tests, which also drive target/debug/makescope on a fixture.
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
python3 -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$wheels/dist" ./python
python3 -m venv "$wheels/venv"
"$wheels/venv/bin/python" -m pip install --quiet --disable-pip-version-check pytest
PATH=/usr/bin:/bin "$wheels/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-index "$wheels"/dist/makescope-*.whl
"$wheels/venv/bin/python" -m pytest -q python/tests
