#!/usr/bin/env bash
# Builds the Windows release zip: warden.exe, README.md and sample configs, in
# dist/warden-VERSION-windows-x86_64.zip. Cross-compiles with Debian's mingw-w64
# (apt-get install gcc-mingw-w64-x86-64; rustup target add x86_64-pc-windows-gnu).
#
#   scripts/package-windows.sh           release build (what users get)
#   scripts/package-windows.sh --debug   debug build (CI checks the packaging this way)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
PROFILE=release
CARGO_FLAGS=(--release)
if [ "${1:-}" = "--debug" ]; then
    PROFILE=debug
    CARGO_FLAGS=()
elif [ -n "${1:-}" ]; then
    echo "usage: $0 [--debug]" >&2
    exit 2
fi

cargo build --target "$TARGET" --bin warden "${CARGO_FLAGS[@]}"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
NAME="warden-$VERSION-windows-x86_64"
[ "$PROFILE" = debug ] && NAME="$NAME-debug"
STAGE="dist/$NAME"
rm -rf "$STAGE" "dist/$NAME.zip"
mkdir -p "$STAGE"
cp "target/$TARGET/$PROFILE/warden.exe" "$STAGE/"
cp README.md "$STAGE/README.md"
cp packaging/windows/warden.toml packaging/windows/programs.toml "$STAGE/"
# python3's zipfile instead of zip(1): python3 is on every Debian CI image.
(cd dist && python3 -m zipfile -c "$NAME.zip" "$NAME")
rm -rf "$STAGE"
python3 -m zipfile -l "dist/$NAME.zip"
echo "dist/$NAME.zip"
