#!/usr/bin/env bash
# The README's first command: install what is missing, build, bring a
# one-node cluster up (embedded store, data in $DATA_DIR), and run the
# example: the nginx ReplicationController and Service, pods Running, and
# "Welcome to nginx!" over HTTP. Run it again: `cluster up` says the cluster
# already runs and the example is applied again (unchanged).
# Stop with: target/release/cluster down [--purge]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --release --workspace --bins
BIN=${CARGO_TARGET_DIR:-target}/release
DATA=${DATA_DIR:-/var/lib/mini-kubernetes}
"$BIN/cluster" up --data-dir "$DATA"
export KUBECONFIG=$DATA/kubeconfig
kubectl() { "$BIN/kubectl" "$@"; }

set -x
kubectl apply -f manifests/nginx-rc.yaml -f manifests/nginx-svc.yaml
kubectl wait --for=condition=Ready pod -l app=nginx --timeout=120s
kubectl get rc,pods,svc -o wide
set +x
svc_ip=$(kubectl get svc nginx -o 'jsonpath={.spec.clusterIP}')
pod_ip=$(kubectl get pods -l app=nginx -o 'jsonpath={.items[0].status.podIP}')
# Through the Service (kube-proxy programs it within a second or so of the
# endpoints becoming ready); straight to a pod if it never answers.
for url in $(for _ in $(seq 20); do echo "http://$svc_ip/"; done) "http://$pod_ip/"; do
  if page=$(curl --noproxy '*' -sf --max-time 5 "$url"); then
    echo "curl $url:"
    echo "$page" | grep -o "Welcome to nginx!"
    exit 0
  fi
  sleep 0.5
done
echo "nginx did not answer on $svc_ip or $pod_ip" >&2
exit 1
