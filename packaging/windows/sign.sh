#!/usr/bin/env bash
# Authenticode-signs a Windows executable in place with osslsigncode: the
# PEM certificate (or chain) in SIGN_CERT and its PEM key in SIGN_KEY; the
# key's passphrase, if any, in the file SIGN_PASS_FILE; a timestamp from the
# RFC 3161 server SIGN_TIMESTAMP_URL when set (without one, the signature is
# valid only while the certificate is). Called by build.sh for the programs
# and by makensis for the installer and its uninstaller.
#
# usage: packaging/windows/sign.sh FILE.exe
set -euo pipefail
f=${1:?usage: sign.sh FILE.exe}
: "${SIGN_CERT:?SIGN_CERT: PEM certificate}" "${SIGN_KEY:?SIGN_KEY: PEM private key}"

args=(sign -h sha256 -certs "$SIGN_CERT" -key "$SIGN_KEY"
  -n "Loyalty Terminal" -i "https://github.com/offline-loyalty/terminal")
if [ -n "${SIGN_PASS_FILE:-}" ]; then
  args+=(-readpass "$SIGN_PASS_FILE")
fi
if [ -n "${SIGN_TIMESTAMP_URL:-}" ]; then
  args+=(-ts "$SIGN_TIMESTAMP_URL")
fi
osslsigncode "${args[@]}" -in "$f" -out "$f.signed" >/dev/null
mv -f "$f.signed" "$f"
