#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine: the C
# toolchain and X11/GL headers for Fyne's cgo build, Xvfb and xwd for screenshots,
# socat for pty tests, and staticcheck (pinned) into ./bin. Idempotent and
# quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(gcc pkg-config libgl1-mesa-dev xorg-dev libxkbcommon-dev xvfb xauth x11-apps socat libgl1-mesa-dri shellcheck)
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

STATICCHECK_VERSION=v0.8.2
if ! [ -x bin/staticcheck ] || ! bin/staticcheck -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  echo "deps: installing staticcheck $STATICCHECK_VERSION" >&2
  GOBIN="$PWD/bin" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
