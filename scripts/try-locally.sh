#!/usr/bin/env bash
# Brokkr end to end on this machine, no cluster needed: the broker (SQLite), the Kubernetes API
# test double and an agent that enrolls itself; a ConfigMap is applied, changed and pruned, and
# kubectl shows each step. Everything lives in a temporary folder and stops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p brokkr-broker -p brokkr-agent -p kube-double
bin="$PWD/target/debug"
demo=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$demo"' EXIT
cd "$demo"

"$bin/kube-double" --port 0 --kubeconfig kubeconfig.yaml > double.log &
until [ -s kubeconfig.yaml ]; do sleep 0.1; done
BROKKR__DATABASE__URL=sqlite://demo.db BROKKR__TENANCY__DEFAULT_REACH=true \
  "$bin/brokkr-broker" serve --listen-addr 127.0.0.1:3900 --admin-pak-file admin.pak 2> broker.log &
until curl -sf http://127.0.0.1:3900/readyz > /dev/null; do sleep 0.1; done
url=http://127.0.0.1:3900
admin=$(cat admin.pak)
post() { curl -sf -X POST "$url$1" -H "Authorization: Bearer $2" -H "Content-Type: application/json" -d "$3"; }

generator=$(post /api/v1/generators "$admin" '{"name": "demo-ci"}' | jq -r .pak)
token=$(post /api/v1/enrollment-tokens "$admin" '{"labels": ["demo"]}' | jq -r .token)
stack=$(post /api/v1/stacks "$generator" '{"name": "demo", "labels": ["demo"]}' | jq -r .id)
BROKKR__AGENT__BROKER_URL=$url BROKKR__AGENT__ENROLLMENT_TOKEN=$token \
  BROKKR__AGENT__NAME=laptop BROKKR__AGENT__CLUSTER_NAME=double \
  BROKKR__AGENT__STATE_PATH="$demo/agent-state.json" BROKKR__AGENT__LISTEN_ADDR=127.0.0.1:0 \
  KUBECONFIG=kubeconfig.yaml "$bin/brokkr-agent" 2> agent.log &

config_map() { printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: default\ndata:\n  greeting: %s\n' "$1" "$2"; }
publish() { post "/api/v1/stacks/$stack/deployment-objects" "$generator" "$(jq -n --arg y "$1" '{yaml_content: $y}')" > /dev/null; }
show() { KUBECONFIG=kubeconfig.yaml kubectl get configmaps -n default -o custom-columns=NAME:.metadata.name,GREETING:.data.greeting --no-headers 2>/dev/null | grep -v kube-root || true; }
wait_for() { for _ in $(seq 100); do [ "$(show)" = "$1" ] && return 0; sleep 0.1; done; echo "expected: $1, saw: $(show)"; exit 1; }

publish "$(config_map hello hello)"
wait_for "hello   hello"; echo "applied:"; show
publish "$(config_map hello bonjour)"
wait_for "hello   bonjour"; echo "changed:"; show
publish "$(config_map goodbye ciao)"
wait_for "goodbye   ciao"; echo "pruned hello, applied goodbye:"; show
echo "the agent enrolled as: $(curl -sf "$url/api/v1/agents" -H "Authorization: Bearer $admin" | jq -r '.items[0].name')"
