#!/usr/bin/env bash
# The pull-request report, locally: how the workspace's metrics, params and tables differ from a revision.
#
#   scripts/metrics_report.sh            # against main
#   scripts/metrics_report.sh HEAD~1     # against any git revision
#
# Markdown on stdout: `dvc metrics diff REV --md`, `dvc params diff REV --md` and the diff of the paper's
# tables (metrics/tables/, the tables stage) against REV's (what CI posts on a PR).
# Run it after `dvc repro`, so the workspace's metrics and tables come from the workspace's code.
set -euo pipefail
rev="${1:-main}"
if [ -n "${DVC:-}" ]; then read -r -a dvc <<<"$DVC"
elif command -v dvc >/dev/null 2>&1; then dvc=(dvc)
else dvc=(python -m dvc); fi
export DVC_NO_ANALYTICS=1

# With nothing changed, dvc prints an empty table (header and rule only): say so instead.
table_or() {
  if [ "$(grep -c '^|' <<<"$1")" -gt 2 ]; then echo "$1"; else echo "$2"; fi
}
metrics=$("${dvc[@]}" metrics diff "$rev" --md)
params=$("${dvc[@]}" params diff "$rev" --md)
tables=$(git diff --no-color "$rev" -- 'metrics/tables/*.md' ':(exclude)metrics/tables/README.md')
echo "### Metrics: workspace vs \`$rev\`"
echo
table_or "$metrics" "No metric changed."
echo
echo "### Params: workspace vs \`$rev\`"
echo
table_or "$params" "No param changed."
echo
echo "### Tables (metrics/tables/): workspace vs \`$rev\`"
echo
if [ -z "$tables" ]; then echo "No table changed."; else printf '```diff\n%s\n```\n' "$tables"; fi
