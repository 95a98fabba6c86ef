#!/usr/bin/env bash
# build-msi.sh EXE VERSION OUT: the mig-loader MSI (packaging/windows/mig-loader.wxs) around the
# Windows loader EXE, with ProductVersion VERSION (numeric a.b.c), written to OUT. `make
# msi-loader` and the Windows end-to-end test (loader-min/tests/windows_msi.rs) both build it
# here. wixl (Debian: wixl) takes a File's Source relative to the .wxs, so both go to a temporary
# directory first.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 EXE VERSION OUT" >&2; exit 2; }
exe=$1 version=$2 out=$3
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "$0: version $version is not a.b.c" >&2; exit 2; }
[ -f "$exe" ] || { echo "$0: $exe does not exist" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$(dirname "$0")/mig-loader.wxs" "$work/"
cp "$exe" "$work/mig-loader.exe"
mkdir -p "$(dirname "$out")"
# wixl warns on stderr about attributes it does not model; a real error fails the build.
wixl -a x64 -D Version="$version" -o "$out" "$work/mig-loader.wxs"
