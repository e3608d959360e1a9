#!/usr/bin/env bash
# Roll neuro-divergent back (the runbook's rollback procedure, made
# safe for distroless images, Flagger and the Wasm filter).
#
#   deploy/scripts/rollback.sh [--dry-run] [--namespace NS] [--deployment NAME]
#                              [--mode deployment|canary|filter]
#                              [--filter-namespace NS] [--filter-name NAME] [--timeout SECONDS]
#
# Modes:
#   deployment (default)  kubectl rollout undo of the Deployment, wait for the
#                         rollout, then check /ready through the API server's
#                         service proxy (the distroless image has no curl to exec).
#   canary                Flagger owns the Deployment: undo the target
#                         Deployment's pod spec (Flagger keeps serving the
#                         primary and analyses the reverted spec), skip the
#                         analysis, and wait until the Canary is promoted again.
#   filter                The instant one: set the Wasm filter's rust_weight_bp
#                         to 0 on the WasmPlugin, so every new request goes to
#                         Python (istio/README.md, "Runbook"). Persist it in the
#                         Helm values too, or the next helm upgrade restores the
#                         old weight.
#
# --dry-run prints the kubectl commands instead of running them.
# Exit status: 0 done, 1 a step failed, 2 bad arguments.
set -euo pipefail

namespace=default
deployment=neuro-divergent
mode=deployment
filter_namespace=istio-system
filter_name=nd-filter-gateway
timeout=300
dry_run=0

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf 'rollback: %s\n' "$*" >&2; exit 1; }
bad_usage() { printf 'rollback: %s\n' "$*" >&2; usage >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1 ;;
    --namespace|-n) [ $# -ge 2 ] || bad_usage "$1 needs a value"; namespace=$2; shift ;;
    --deployment|-d) [ $# -ge 2 ] || bad_usage "$1 needs a value"; deployment=$2; shift ;;
    --mode) [ $# -ge 2 ] || bad_usage "$1 needs a value"; mode=$2; shift ;;
    --filter-namespace) [ $# -ge 2 ] || bad_usage "$1 needs a value"; filter_namespace=$2; shift ;;
    --filter-name) [ $# -ge 2 ] || bad_usage "$1 needs a value"; filter_name=$2; shift ;;
    --timeout) [ $# -ge 2 ] || bad_usage "$1 needs a value"; timeout=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument: $1" ;;
  esac
  shift
done
case $mode in deployment|canary|filter) ;; *) bad_usage "--mode must be deployment, canary or filter" ;; esac
case $timeout in ''|*[!0-9]*) bad_usage "--timeout must be a number of seconds" ;; esac

# Runs a command, or prints it (shell-quoted) with --dry-run.
run() {
  if [ "$dry_run" = 1 ]; then
    printf '%q ' "$@" | sed 's/ $//'
    printf '\n'
  else
    "$@"
  fi
}

say() { printf 'rollback: %s\n' "$*" >&2; }

check_ready() { # the Service answers /ready through the API server's proxy
  local svc=$1 port=$2 i path
  path="/api/v1/namespaces/$namespace/services/$svc:$port/proxy/ready"
  if [ "$dry_run" = 1 ]; then
    run kubectl get --raw "$path"
    return 0
  fi
  for i in $(seq 1 30); do
    if kubectl get --raw "$path" >/dev/null; then
      say "$svc /ready answered 200"
      return 0
    fi
    say "/ready not answering yet ($i/30); retrying in 10s"
    sleep 10
  done
  die "$svc never answered /ready"
}

service_port() {
  if [ "$dry_run" = 1 ]; then echo 8080; return; fi
  kubectl -n "$namespace" get service "$deployment" -o jsonpath='{.spec.ports[0].port}'
}

case $mode in
  deployment)
    say "rolling back deployment/$deployment in $namespace"
    run kubectl -n "$namespace" get deployment "$deployment"
    run kubectl -n "$namespace" rollout undo "deployment/$deployment"
    run kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout="${timeout}s"
    check_ready "$deployment" "$(service_port)"
    ;;
  canary)
    say "reverting the canary target deployment/$deployment in $namespace (Flagger keeps serving $deployment-primary)"
    run kubectl -n "$namespace" get canary "$deployment"
    run kubectl -n "$namespace" rollout undo "deployment/$deployment"
    # The reverted spec is the one that was running: promote it without a new analysis.
    run kubectl -n "$namespace" patch canary "$deployment" --type merge -p '{"spec":{"skipAnalysis":true}}'
    run kubectl -n "$namespace" wait "canary/$deployment" --for=condition=Promoted --timeout="${timeout}s"
    run kubectl -n "$namespace" patch canary "$deployment" --type merge -p '{"spec":{"skipAnalysis":false}}'
    check_ready "$deployment" "$(service_port)"
    ;;
  filter)
    say "setting rust_weight_bp to 0 on wasmplugin/$filter_name in $filter_namespace: new requests go to Python"
    run kubectl -n "$filter_namespace" get wasmplugin "$filter_name" -o jsonpath='{.spec.pluginConfig.rust_weight_bp}'
    run kubectl -n "$filter_namespace" patch wasmplugin "$filter_name" --type merge \
      -p '{"spec":{"pluginConfig":{"rust_weight_bp":0}}}'
    say "persist it: helm upgrade <release> helm/neuro-divergent --reuse-values --set istio.filter.pluginConfig.rust_weight_bp=0"
    ;;
esac
say "done ($mode)"
