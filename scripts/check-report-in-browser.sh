#!/bin/sh
# Loads a benchbench report from disk in headless Chromium (Debian's `chromium`), with the network
# cut off, takes a screenshot and fails on a load error, a console error or an empty page.
#   scripts/check-report-in-browser.sh REPORT_DIR [SCREENSHOT.png]
set -eu
dir=${1:?usage: $0 REPORT_DIR [SCREENSHOT.png]}
shot=${2:-$dir/screenshot.png}
index=$(cd "$dir" && pwd)/index.html
[ -f "$index" ] || { echo "error: $index does not exist" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "error: chromium not found (apt-get install chromium)" >&2; exit 2; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
browse() {
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars "--host-resolver-rules=MAP * ~NOTFOUND" \
    --enable-logging=stderr --v=0 "$@" "file://$index"
}
browse --window-size=1280,2400 --screenshot="$shot" 2>"$log" >/dev/null || { cat "$log" >&2; echo "error: chromium failed" >&2; exit 1; }
dom=$(browse --dump-dom 2>>"$log") || { cat "$log" >&2; echo "error: chromium failed" >&2; exit 1; }
if grep -E "CONSOLE.*(Error|Uncaught)|Failed to load|net::ERR" "$log" >&2; then
  echo "error: the report raised errors in the browser (above)" >&2; exit 1
fi
echo "$dom" | grep -q "<table" || { echo "error: the page has no table after loading" >&2; exit 1; }
size=$(wc -c < "$shot")
[ "$size" -gt 10000 ] || { echo "error: screenshot $shot is only $size bytes" >&2; exit 1; }
echo "ok: $index loaded without errors; screenshot $shot ($size bytes)"
