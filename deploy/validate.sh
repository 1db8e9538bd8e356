#!/usr/bin/env bash
# Renders the kustomize base and every overlay under deploy/k8s and
# validates each rendering offline against the Kubernetes schemas with
# `kubernetes-validate --strict` (unknown fields are errors).
#
#   KUBECTL=kubectl KUBERNETES_VALIDATE=kubernetes-validate deploy/validate.sh
#
# .ci/run installs both tools (under .ci/.tools) and runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBECTL=${KUBECTL:-kubectl}
KUBERNETES_VALIDATE=${KUBERNETES_VALIDATE:-kubernetes-validate}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

targets=(deploy/k8s/base deploy/k8s/overlays/*)
for target in "${targets[@]}"; do
  name=$(basename "$target")
  "$KUBECTL" kustomize "$target" >"$out/$name.yaml"
  kinds=$(grep -c '^kind:' "$out/$name.yaml")
  "$KUBERNETES_VALIDATE" --strict --quiet "$out/$name.yaml"
  echo "$target: $kinds resources rendered, valid (strict)"
done
# Every overlay must be there, or a typo in a path would validate nothing.
for overlay in dev prod; do
  [ -s "$out/$overlay.yaml" ] || { echo "overlay $overlay not rendered"; exit 1; }
done
