#!/usr/bin/env bash
# Installs what the tests and the local environment need: Node modules (npm ci
# when missing or stale), the control plane (kube-apiserver, etcd, kube-controller-manager) built from
# Go modules and cached per version outside the work tree, and moto in a
# project-local Python virtualenv. Safe to run again: it only does what is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${ECR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecr-creds-refresher}
moto_version=5.2.5

if [ ! -x "$repo/node_modules/.bin/node" ] || [ "$repo/package-lock.json" -nt "$repo/node_modules/.package-lock.json" ]; then
  echo "setup: installing Node modules (npm ci)"
  (cd "$repo" && npm ci --no-audit --no-fund)
fi

tools="$repo/tools/controlplane"
kube_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$tools/go.mod")
key=$(cat "$tools/go.mod" "$tools/go.sum" "$tools"/cmd/*/main.go | sha256sum | cut -c1-12)
bin_dir="$cache_root/controlplane/$kube_version-$key"

if [ ! -x "$bin_dir/kube-apiserver" ] || [ ! -x "$bin_dir/etcd" ] || [ ! -x "$bin_dir/kube-controller-manager" ]; then
  echo "setup: building the control plane $kube_version (first time only; several minutes)"
  mkdir -p "$bin_dir.tmp"
  (cd "$tools" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin_dir.tmp/" ./cmd/...)
  rm -rf "$bin_dir" && mv "$bin_dir.tmp" "$bin_dir"
fi
mkdir -p "$repo/.cache"
ln -sfn "$bin_dir" "$repo/.cache/bin"

venv="$repo/.cache/moto-venv"
if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
  echo "setup: installing moto $moto_version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi
