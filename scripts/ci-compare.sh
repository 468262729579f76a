#!/bin/sh
# A CI job for a pull request: run a suite (default: smoke) at this commit, compare it with the
# stored run of the merge-base with the base branch (default: main), write the comparison as
# markdown for a pull-request comment, and exit 3 on a real regression (a cell worsened beyond its
# threshold and calibrated noise, or a trial that newly fails).
#
#   scripts/ci-compare.sh [BASE_BRANCH] [SUITE]
#
# The results database must outlive the job (cache benchbench.sqlite between CI runs, or point
# BENCHBENCH_DB at a persistent path): the base branch's own CI runs are what a pull request is
# compared against. A branch whose merge-base has no stored run yet is not a failure: compare
# says so and exits 0. Exit codes: 0 no regression; 1 a trial failed (stored, and reported);
# 3 a regression; anything else: the build or benchbench itself failed.
set -eu

base="${1:-main}"
suite="${2:-smoke}"
out="${CI_REPORT_DIR:-reports/ci}"
bb=.build/release/benchbench

make release
# A history of the base branch is needed to find the merge-base (CI checkouts are often shallow).
git fetch --quiet origin "$base:$base" 2>/dev/null || true

status=0
"$bb" suite "$suite" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then exit "$status"; fi

mkdir -p "$out"
"$bb" report --compare "$base" HEAD --suite "$suite" --format markdown --out "$out"
"$bb" compare "$base" HEAD --suite "$suite" --fail-on-regression || exit $?
exit "$status"
