#!/usr/bin/env bash
# Fetches the console's JavaScript from the npm registry at the pinned
# versions into headoffice/console/assets/vendor/ (embedded in the binary:
# the console needs no CDN and no internet) and records their SHA-256 in
# VERSIONS. Run it to change a version; the files are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX=2.0.11
CHARTJS=4.6.1
out=headoffice/console/assets/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$HTMX" "chart.js@$CHARTJS" >/dev/null)
tar xzf "$tmp/htmx.org-$HTMX.tgz" -C "$tmp" package/dist/htmx.min.js
cp "$tmp/package/dist/htmx.min.js" "$out/"
tar xzf "$tmp/chart.js-$CHARTJS.tgz" -C "$tmp" package/dist/chart.umd.min.js
cp "$tmp/package/dist/chart.umd.min.js" "$out/"
{
  echo "htmx.org $HTMX (npm), dist/htmx.min.js, BSD Zero Clause License"
  echo "chart.js $CHARTJS (npm), dist/chart.umd.min.js, MIT License, Copyright (c) 2014-2024 Chart.js Contributors"
  (cd "$out" && sha256sum htmx.min.js chart.umd.min.js)
} >"$out/VERSIONS"
echo "console assets: htmx $HTMX, chart.js $CHARTJS"
