#!/usr/bin/env bash
# Start kube-apiserver on loopback (on its embedded store; STORE=etcd starts
# Debian's etcd and uses it instead), create the example manifests and list
# them with the real kubectl. `scripts/run-apiserver.sh stop` ends what it
# started (by the PIDs recorded at start) and removes the data.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${MINI_K8S_DIR:-/tmp/mini-k8s}
ETCD_PORT=${ETCD_PORT:-23790}
API_PORT=${API_PORT:-8080}

stop() {
  for f in "$DIR"/apiserver.pid "$DIR"/etcd.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}

if [ "${1:-}" = "stop" ]; then
  stop
  rm -rf "$DIR"
  echo "stopped"
  exit 0
fi

STORE=${STORE:-embedded}
BIN=target/release/kube-apiserver
[ -x "$BIN" ] || cargo build --release -p apiserver
if [ -f "$DIR/apiserver.pid" ] && kill -0 "$(cat "$DIR/apiserver.pid")" 2>/dev/null; then
  echo "already running (kubeconfig: $DIR/kubeconfig)"
  exit 0
fi
mkdir -p "$DIR"
if [ "$STORE" = etcd ]; then
command -v etcd >/dev/null || { echo "etcd is missing: apt-get install -y etcd-server" >&2; exit 1; }
etcd --name=mini --data-dir="$DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls="http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster="mini=http://127.0.0.1:$((ETCD_PORT + 1))" --log-level=warn >"$DIR/etcd.log" 2>&1 &
echo $! >"$DIR/etcd.pid"
STORE_FLAG="--etcd-servers=http://127.0.0.1:$ETCD_PORT"
else
STORE_FLAG="--data-dir=$DIR/data"
fi
"$BIN" "$STORE_FLAG" --bind-address=127.0.0.1 --port="$API_PORT" >"$DIR/apiserver.log" 2>&1 &
echo $! >"$DIR/apiserver.pid"
for _ in $(seq 1 100); do
  curl --noproxy '*' -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl --noproxy '*' -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null || { echo "kube-apiserver did not start; see $DIR/apiserver.log" >&2; stop; exit 1; }
cat >"$DIR/kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: mini
  cluster:
    server: http://127.0.0.1:$API_PORT
contexts:
- name: mini
  context:
    cluster: mini
    user: admin
    namespace: default
current-context: mini
users:
- name: admin
  user: {}
KCFG
export KUBECONFIG="$DIR/kubeconfig"
kubectl create -f manifests/
kubectl get rc,svc,pods
cat <<MSG

kube-apiserver is at http://127.0.0.1:$API_PORT (store: $STORE).
  export KUBECONFIG=$DIR/kubeconfig; kubectl get all
Stop it with: scripts/run-apiserver.sh stop
MSG
