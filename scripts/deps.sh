#!/usr/bin/env bash
# Installs what building, packaging and testing need on a fresh Debian
# machine: the C toolchain and X11/GL headers for Fyne's cgo build, Xvfb and
# xwd for screenshots, socat for pty tests, curl to test the local API as
# scripts call it, PostgreSQL for head office's tests (the tests start their
# own server), Chromium for the console's browser tests, the packaging
# tools (mingw-w64 for the Windows build, NSIS, osslsigncode, openssl,
# dpkg-dev, systemd for systemd-analyze, desktop-file-utils), and
# staticcheck and nfpm (pinned) into ./bin.
# `deps.sh demo` installs only what building and running the demo need
# (make run). Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(gcc pkg-config libgl1-mesa-dev xorg-dev libxkbcommon-dev libgl1-mesa-dri)
if [ "${1:-}" != demo ]; then
  apt_pkgs+=(xvfb xauth x11-apps socat curl shellcheck postgresql chromium
    gcc-mingw-w64-x86-64-win32 nsis osslsigncode openssl dpkg-dev systemd desktop-file-utils)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "${1:-}" != demo ] || exit 0

STATICCHECK_VERSION=v0.8.2
if ! [ -x bin/staticcheck ] || ! bin/staticcheck -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  echo "deps: installing staticcheck $STATICCHECK_VERSION" >&2
  GOBIN="$PWD/bin" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

# nfpm builds the Debian packages (make package). v2.46 and later need modules
# the Go module proxy does not serve; v2.45.2 is the newest that installs.
NFPM_VERSION=v2.45.2
if ! [ -x bin/nfpm ] || ! go version -m bin/nfpm 2>/dev/null | grep -q "nfpm/v2[[:space:]]*$NFPM_VERSION"; then
  echo "deps: installing nfpm $NFPM_VERSION" >&2
  GOBIN="$PWD/bin" go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
fi
