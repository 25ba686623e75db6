#!/usr/bin/env bash
# The pip extra of this project that holds the DVC plugin for a remote URL:
#   s3://bucket/path -> s3 (dvc-s3), gs://bucket/path -> gs (dvc-gs), azure://container/path -> azure (dvc-azure);
# nothing for the remotes DVC reads without a plugin (a local or network folder, ...).
# Usage: pip install -e ".[$(scripts/remote_extra.sh "$URL")]"   (CI: .github/workflows/pr-metrics.yml)
case "${1:-}" in
  s3://*) echo s3 ;;
  gs://*|gcs://*) echo gs ;;
  azure://*|az://*) echo azure ;;
  *) ;;
esac
