#!/usr/bin/env bash
# Install the Debian packages the project needs, if missing. The one list,
# used by the README's commands and by .ci/run.
#   protobuf-compiler libprotobuf-dev   build etcd-client and k8s-cri (the
#                       latter holds google/protobuf/*.proto, which protoc imports)
#   etcd-server         one of the two stores (tests run both)
#   containerd runc containernetworking-plugins   run pods (CRI, CNI in /usr/lib/cni)
#   busybox-static nginx   sources of the offline images (docs/node-runtime.md)
#   nftables libnftables1 iptables iproute2 util-linux   networking (kube-proxy
#                       loads libnftables.so.1), nsenter
#   libc6-dev curl      the static pause build; the example's HTTP checks
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=(protobuf-compiler libprotobuf-dev etcd-server containerd runc containernetworking-plugins
      busybox-static nginx nftables libnftables1 iptables iproute2 util-linux libc6-dev curl)
missing=()
for p in "${need[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update
  # Debian's etcd and nginx packages try to start system services; without an
  # init system they do not, and nothing here uses them.
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
