#!/usr/bin/env bash
# Builds what IT installs, into $DIST (default dist/):
#   linux:   pos-agent_V_amd64.deb and headoffice_V_amd64.deb (nfpm), and the
#            binaries in them under linux-amd64/
#   windows: pos-agent-setup-V.exe (NSIS) and the programs in it under
#            windows-amd64/: pos-agent.exe (console subsystem: the CLI verbs and
#            serve) and pos-agent-app.exe (GUI subsystem: `run`, no console)
# `make package` runs it after `make deps` has installed the tools (nfpm in
# ./bin, makensis, mingw-w64, osslsigncode).
#
# usage: packaging/build.sh [linux] [windows]     (default: both)
#
# Environment:
#   VERSION, LDFLAGS  required; the Makefile's (version stamp, -X flags)
#   DIST              output directory (default dist; relative to the
#                     repository)
#   SIGN_CERT, SIGN_KEY  PEM certificate and key: Authenticode-sign both
#                     programs, the installer and its uninstaller (see
#                     packaging/windows/sign.sh for SIGN_PASS_FILE and
#                     SIGN_TIMESTAMP_URL)
#   POS_AGENT_PKG     the Go package built as pos-agent for Windows (default
#                     ./cmd/pos-agent); the tests give a small cgo program so
#                     that they exercise this path without Fyne's cold
#                     cross build, which takes about ten minutes
#
# Sourced (`source packaging/build.sh`), it only defines its functions, for
# the tests of deb_version and file_version.
set -euo pipefail

# The win32 thread model links no libwinpthread-1.dll: the programs need
# nothing beyond Windows' own DLLs.
mingw_cc=x86_64-w64-mingw32-gcc-win32

# deb_version turns `git describe` output into a Debian version: a tag's
# numbers first (v1.2.0-3-gabc1234 gives 1.2.0+3+gabc1234), or 0~git and the
# commit when no tag is reachable (sorting before any release), and no '-',
# which would start a Debian revision.
deb_version() {
  local v=${1#v}
  [[ $v =~ ^[0-9]+(\.[0-9]+)+ ]] || v="0~git$v"
  printf '%s\n' "${v//-/+}"
}

# file_version gives Windows' four-number file version: a release's
# numbers, 0.0.0.0 for a build between releases.
file_version() {
  local v=${1#v}
  if [[ $v =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
    printf '%s.%s.%s.0\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
  else
    printf '0.0.0.0\n'
  fi
}

need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || {
      echo "package: $t not found: run make deps" >&2
      exit 1
    }
  done
}

build_linux() {
  [ -x "$nfpm" ] || {
    echo "package: $nfpm not found: run make deps" >&2
    exit 1
  }
  local out=$dist/linux-amd64
  mkdir -p "$out"
  echo "package: linux binaries" >&2
  # pos-agent links Fyne (cgo); headoffice needs no C and is built static,
  # so its package depends on no library.
  CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "$LDFLAGS" -o "$out/pos-agent" ./cmd/pos-agent
  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "$LDFLAGS" -o "$out/headoffice" ./cmd/headoffice
  local p
  for p in pos-agent headoffice; do
    rm -f "$dist/${p}_"*.deb
    DEB_ARCH=amd64 DEB_VERSION=$(deb_version "$VERSION") BUILD_DIR=$out \
      "$nfpm" package --config "packaging/linux/$p/nfpm.yaml" --packager deb --target "$dist/" >&2
  done
  ls "$dist"/*.deb
}

build_windows() {
  need "$mingw_cc" makensis
  local sign="" pkg=${POS_AGENT_PKG:-./cmd/pos-agent} out=$dist/windows-amd64
  if [ -n "${SIGN_CERT:-}" ] || [ -n "${SIGN_KEY:-}" ]; then
    : "${SIGN_CERT:?SIGN_CERT and SIGN_KEY go together}" "${SIGN_KEY:?SIGN_CERT and SIGN_KEY go together}"
    need osslsigncode
    sign=$root/packaging/windows/sign.sh
  fi
  mkdir -p "$out"
  echo "package: windows programs ($pkg)" >&2
  local env=(CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC="$mingw_cc")
  env "${env[@]}" go build -trimpath -ldflags "$LDFLAGS" -o "$out/pos-agent.exe" "$pkg"
  env "${env[@]}" go build -trimpath -ldflags "-H windowsgui $LDFLAGS" -o "$out/pos-agent-app.exe" "$pkg"
  if [ -n "$sign" ]; then
    "$sign" "$out/pos-agent.exe"
    "$sign" "$out/pos-agent-app.exe"
  fi
  local setup=$dist/pos-agent-setup-$VERSION.exe
  local defs=(-DVERSION="$VERSION" -DFILE_VERSION="$(file_version "$VERSION")" -DBUILD_DIR="$out" -DOUTFILE="$setup")
  if [ -n "$sign" ]; then
    defs+=(-DSIGN="$sign")
  fi
  rm -f "$dist"/pos-agent-setup-*.exe
  makensis -V2 -WX "${defs[@]}" packaging/windows/pos-agent.nsi >&2
  ls "$setup"
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  root=$PWD
  : "${VERSION:?VERSION is required (make package sets it)}"
  : "${LDFLAGS:?LDFLAGS is required (make package sets it)}"
  dist=${DIST:-dist}
  mkdir -p "$dist"
  dist=$(cd "$dist" && pwd)
  nfpm=$root/bin/nfpm

  local targets=("$@") t
  ((${#targets[@]})) || targets=(linux windows)
  for t in "${targets[@]}"; do
    case $t in
    linux) build_linux ;;
    windows) build_windows ;;
    *)
      echo "usage: packaging/build.sh [linux] [windows]" >&2
      exit 2
      ;;
    esac
  done
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
