#!/usr/bin/env bash
# Installs what the tests and the local environment need: the Debian packages (registry, node,
# image builder), Node modules (npm ci when missing or stale), the control plane and node
# (kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl),
# helm, prometheus and promtool built from Go modules and cached per version outside the work tree,
# and moto in a project-local Python virtualenv. Safe to run again: it only does what is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${ECR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-creds-refresher}
moto_version=5.2.5

# Debian packages: certificates (openssl), a registry and its clients (docker-registry, skopeo,
# umoci, apache2-utils for htpasswd), the node (containerd, runc, CNI plugins, iptables, conntrack,
# iproute2, busybox-static for its images), the image builder (buildah) and jq for the migration
# guide's commands.
debian_packages=(openssl ca-certificates docker-registry skopeo umoci apache2-utils containerd runc
  containernetworking-plugins iptables conntrack iproute2 busybox-static buildah jq)
missing=()
for pkg in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
for tool in go python3; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is not installed; see the README's Prerequisites" >&2; exit 1; }
done

if [ ! -x "$repo/node_modules/.bin/node" ] || [ "$repo/package-lock.json" -nt "$repo/node_modules/.package-lock.json" ]; then
  echo "setup: installing Node modules (npm ci)"
  (cd "$repo" && npm ci --no-audit --no-fund)
fi

# The production-bundle test installs production dependencies with
# `npm ci --omit=dev --omit=optional --offline` (tests use no network beyond loopback); fill the npm
# cache for that install once per lockfile.
prod_marker="$cache_root/npm-production/$(sha256sum "$repo/package-lock.json" | cut -c1-12)"
if [ ! -f "$prod_marker" ]; then
  echo "setup: caching the production dependencies for the bundle test"
  prod_dir=$(mktemp -d)
  cp "$repo/package.json" "$repo/package-lock.json" "$prod_dir/"
  (cd "$prod_dir" && PATH="$repo/node_modules/.bin:$PATH" npm ci --omit=dev --omit=optional --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
  rm -rf "$prod_dir"
  mkdir -p "$(dirname "$prod_marker")" && touch "$prod_marker"
fi

tools="$repo/tools/controlplane"
kube_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$tools/go.mod")
key=$(cat "$tools/go.mod" "$tools/go.sum" "$tools"/cmd/*/main.go <(echo version-stamped) | sha256sum | cut -c1-12)
bin_dir="$cache_root/controlplane/$kube_version-$key"

built=true
for cmd in "$tools"/cmd/*/; do
  [ -x "$bin_dir/$(basename "$cmd")" ] || built=false
done
if [ "$built" = false ]; then
  echo "setup: building the control plane and node $kube_version (first time only; about 15 minutes on two cores)"
  mkdir -p "$bin_dir.tmp"
  # Stamp the version as Kubernetes' own build does: helm checks a chart's kubeVersion against it.
  minor=$(echo "$kube_version" | cut -d. -f2)
  version_flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    version_flags="$version_flags -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    version_flags="$version_flags -X $pkg.gitTreeState=clean"
  done
  (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w$version_flags" -o "$bin_dir.tmp/" ./cmd/...)
  rm -rf "$bin_dir" && mv "$bin_dir.tmp" "$bin_dir"
fi
mkdir -p "$repo/.cache"
ln -sfn "$bin_dir" "$repo/.cache/bin"

# helm (for the chart tests and the static manifest) from its own Go module, plus the
# prometheus-operator CRDs that the chart's ServiceMonitor and PrometheusRule are validated against.
helm_tools="$repo/tools/helm"
helm_version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v4" { print $3 } $1 == "helm.sh/helm/v4" { print $2 }' "$helm_tools/go.mod")
prometheus_operator_version=v0.90.1
helm_key=$(cat "$helm_tools/go.mod" "$helm_tools/go.sum" "$helm_tools"/cmd/helm/main.go <(echo "$prometheus_operator_version") | sha256sum | cut -c1-12)
helm_dir="$cache_root/helm/$helm_version-$helm_key"

if [ ! -x "$helm_dir/helm" ] || [ ! -f "$helm_dir/monitoring.coreos.com_prometheusrules.yaml" ]; then
  echo "setup: building helm $helm_version (first time only; about 4 minutes on two cores)"
  rm -rf "$helm_dir.tmp" && mkdir -p "$helm_dir.tmp"
  (cd "$helm_tools" && CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" -o "$helm_dir.tmp/" ./cmd/helm)
  crd_module=$(cd "$helm_dir.tmp" && go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$prometheus_operator_version" |
    awk -F'"' '$2 == "Dir" { print $4 }')
  for kind in servicemonitors prometheusrules; do
    cp "$crd_module/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$helm_dir.tmp/"
  done
  chmod u+w "$helm_dir.tmp"/*.yaml
  rm -rf "$helm_dir" && mv "$helm_dir.tmp" "$helm_dir"
fi
ln -sfn "$helm_dir" "$repo/.cache/helm-bin"

# Prometheus and promtool (the chart's alerts checked, unit-tested and evaluated against the running
# operator) from the upstream module's command packages, which tools/prometheus/go.mod lists as
# tools. remove_all_sd leaves out every service discovery but file and HTTP (the tests scrape a
# file-based config); without the builtinassets tag no web UI is embedded, and none is needed.
prometheus_tools="$repo/tools/prometheus"
prometheus_tags=remove_all_sd
prometheus_module_version=$(awk '$1 == "github.com/prometheus/prometheus" { print $2 }' "$prometheus_tools/go.mod")
prometheus_key=$(cat "$prometheus_tools/go.mod" "$prometheus_tools/go.sum" <(echo "$prometheus_tags") | sha256sum | cut -c1-12)
prometheus_dir="$cache_root/prometheus/$prometheus_module_version-$prometheus_key"

if [ ! -x "$prometheus_dir/prometheus" ] || [ ! -x "$prometheus_dir/promtool" ]; then
  echo "setup: building prometheus and promtool $prometheus_module_version (first time only; about 5 minutes on two cores)"
  rm -rf "$prometheus_dir.tmp" && mkdir -p "$prometheus_dir.tmp"
  # Stamp the release version from the module's VERSION file, as its own build does.
  prometheus_module=$(cd "$prometheus_tools" && go mod download -json github.com/prometheus/prometheus |
    awk -F'"' '$2 == "Dir" { print $4 }')
  prometheus_version=$(cat "$prometheus_module/VERSION")
  (cd "$prometheus_tools" && CGO_ENABLED=0 go build -trimpath -tags "$prometheus_tags" \
    -ldflags="-s -w -X github.com/prometheus/common/version.Version=$prometheus_version" -o "$prometheus_dir.tmp/" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
  rm -rf "$prometheus_dir" && mv "$prometheus_dir.tmp" "$prometheus_dir"
fi
ln -sfn "$prometheus_dir" "$repo/.cache/prometheus-bin"

venv="$repo/.cache/moto-venv"
if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
  echo "setup: installing moto $moto_version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi
