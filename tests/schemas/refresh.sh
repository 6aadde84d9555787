#!/usr/bin/env bash
# Re-copies the schemas the tests use from the shared schema folder
# (default ../shared/schemas, relative to the repository root; override with
# SHARED=/path/to/shared) and rewrites SHA256SUMS. See README.md for provenance.
# To test a new kind, add its file name below and run this script.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
src="${SHARED:-../shared}/schemas"
dest="tests/schemas"

kube_files=(
  _definitions.json
  namespace-v1.json
  serviceaccount-v1.json
  storageclass-storage-v1.json
  service-v1.json
  statefulset-apps-v1.json
  poddisruptionbudget-policy-v1.json
  configmap-v1.json
  secret-v1.json
  lease-coordination-v1.json
  persistentvolumeclaim-v1.json
)
crd_files=(
  velero.io_schedules.yaml
  external-secrets.io_secretstores.yaml
  external-secrets.io_externalsecrets.yaml
)

if [[ ! -d "$src" ]]; then
  echo "refresh.sh: $src not found (set SHARED=/path/to/shared)" >&2
  exit 1
fi

mkdir -p "$dest/kubernetes/v1.33-strict" "$dest/crds"
for f in "${kube_files[@]}"; do
  install -m 0644 "$src/kubernetes/v1.33-strict/$f" "$dest/kubernetes/v1.33-strict/$f"
done
for f in "${crd_files[@]}"; do
  install -m 0644 "$src/crds/$f" "$dest/crds/$f"
done

(
  cd "$dest"
  sha256sum "${kube_files[@]/#/kubernetes/v1.33-strict/}" "${crd_files[@]/#/crds/}"
) > "$dest/SHA256SUMS"

echo "refreshed ${#kube_files[@]} Kubernetes schemas and ${#crd_files[@]} CRDs from $src"
