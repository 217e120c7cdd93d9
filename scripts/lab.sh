#!/usr/bin/env bash
# The whole system in one command: a private network made of network
# namespaces (a bridge in its own namespace, three edge hosts, a Kubernetes
# API host, a "pods" host and a client), a real kube-apiserver, edged and
# HAProxy on every edge host. It creates the seed's web-service and database
# and a dual-stack web-dual, shows their addresses, sends traffic through
# the IPv4 and IPv6 VIPs from the client, kills
# the announcing host, shows the failover, prints `edged status` and a stats
# summary, and tears everything down on exit (also on failure or Ctrl-C).
#
# Nothing here touches the root namespace's network: the lab segment
# 10.4.0.0/20 + fd00:4::/64 exists only inside the namespaces this script
# creates.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

[ "$(id -u)" = 0 ] || { echo "lab: run as root (it creates network namespaces)"; exit 1; }

P=edlab                     # namespace prefix; stale ones from a crashed run are removed first
WORK=$(mktemp -d /tmp/edged-lab.XXXXXX)
PIDS=()
TOKEN=lab-admin-token-$$
EDGED_TOKEN=lab-edged-token-$$
API=10.4.0.2
EDGES=(10.4.0.11 10.4.0.12 10.4.0.13)
CLIENT=10.4.0.100
PODS=10.4.1.10
# IPv6 on the same segment (fd00:4::/64, also only inside the namespaces).
EDGES6=(fd00:4::11 fd00:4::12 fd00:4::13)
CLIENT6=fd00:4::100
PODS6=fd00:4::1:10

log() { printf '\n== %s\n' "$*"; }
# ns HOST CMD...: run CMD in HOST's namespace in the foreground. Daemons are
# started as `ip netns exec "$P-HOST" CMD &` directly, so that $! is the
# daemon's own PID (through a function it would be the subshell's, and a kill
# would miss the daemon).
ns() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  for n in $(ip netns list | awk '{print $1}' | grep "^$P-"); do
    ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$n"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install_deps() {
  local missing=()
  for b in haproxy ip curl openssl; do command -v "$b" >/dev/null || missing+=("$b"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages for: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy iproute2 curl openssl >/dev/null
  fi
  systemctl stop haproxy 2>/dev/null || true
}

build() {
  log "building edged, the lab pod and the test kube-apiserver"
  make -s build testapiserver
  go build -o "$WORK/labpod" ./test/labpod
}

network() {
  log "network: bridge namespace $P-br, hosts e1 e2 e3 api pods client on 10.4.0.0/20 and fd00:4::/64"
  for n in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns del "$n"; done
  ip netns add "$P-br"
  ns br ip link add br0 type bridge
  ns br ip link set br0 up
  ns br ip link set lo up
  local -A addr=([e1]=${EDGES[0]} [e2]=${EDGES[1]} [e3]=${EDGES[2]} [api]=$API [pods]=$PODS [cl]=$CLIENT)
  local -A addr6=([e1]=${EDGES6[0]} [e2]=${EDGES6[1]} [e3]=${EDGES6[2]} [pods]=$PODS6 [cl]=$CLIENT6)
  for h in e1 e2 e3 api pods cl; do
    ip netns add "$P-$h"
    ip link add "v$P$h" netns "$P-br" type veth peer name eth0 netns "$P-$h"
    ns br ip link set "v$P$h" master br0 up
    ns "$h" ip link set lo up
    ns "$h" ip addr add "${addr[$h]}/20" dev eth0
    if [ -n "${addr6[$h]:-}" ]; then
      ns "$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0
      ns "$h" ip -6 addr add "${addr6[$h]}/64" dev eth0 nodad
    fi
    ns "$h" ip link set eth0 up
  done
  for h in e1 e2 e3; do
    # VIPs live on lo; only edged answers ARP for them (configs/99-edged.conf).
    ns "$h" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1 \
      net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_announce=2 net.ipv4.ip_nonlocal_bind=1 \
      net.ipv6.ip_nonlocal_bind=1
  done
}

apiserver() {
  log "starting kube-apiserver (embedded etcd) in $P-api at https://$API:6443"
  local d=$WORK/api
  mkdir -p "$d/etcd" "$d/certs"
  printf '%s,admin,admin,system:masters\n%s,edged,edged\n' "$TOKEN" "$EDGED_TOKEN" >"$d/tokens.csv"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  ip netns exec "$P-api" "$ROOT/test/apiserver/bin/testapiserver" --etcd-dir "$d/etcd" --etcd-port 2379 --etcd-peer-port 2380 -- \
    --bind-address=0.0.0.0 --advertise-address=$API --secure-port=6443 --cert-dir="$d/certs" \
    --token-auth-file="$d/tokens.csv" --authorization-mode=RBAC \
    --service-account-key-file="$d/sa.key" --service-account-signing-key-file="$d/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range=10.96.0.0/16,fd00:96::/108 \
    --endpoint-reconciler-type=none >"$d/log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 120); do
    ns api curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" https://127.0.0.1:6443/readyz 2>/dev/null | grep -q 200 && return 0
    sleep 0.5
  done
  echo "kube-apiserver not ready after 60s:"; tail -20 "$d/log"; exit 1
}

# kube METHOD PATH [YAML]: talk to the apiserver as admin from the client host.
kube() {
  local method=$1 path=$2
  if [ $# -ge 3 ]; then
    ns cl curl -sk -X "$method" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/yaml' \
      --data-binary "$3" "https://$API:6443$path"
  else
    ns cl curl -sk -X "$method" -H "Authorization: Bearer $TOKEN" "https://$API:6443$path"
  fi
}

rbac() {
  log "granting edged only configs/rbac.yaml"
  awk 'BEGIN{RS="\n---\n"} {print > ("'"$WORK"'/rbac-" NR ".yaml")}' configs/rbac.yaml
  for f in "$WORK"/rbac-*.yaml; do
    grep -q 'kind: ClusterRoleBinding' "$f" && kube POST /apis/rbac.authorization.k8s.io/v1/clusterrolebindings "$(cat "$f")" >/dev/null
    grep -q 'kind: ClusterRole$' "$f" && kube POST /apis/rbac.authorization.k8s.io/v1/clusterroles "$(cat "$f")" >/dev/null
  done
}

edges() {
  log "starting HAProxy and edged on e1 e2 e3"
  local i=0
  for h in e1 e2 e3; do
    i=$((i + 1))
    local d=$WORK/$h ip=${EDGES[$((i - 1))]}
    mkdir -p "$d/haproxy/edged" "$d/data"
    cat >"$d/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "https://$API:6443", insecure-skip-tls-verify: true}}]
users: [{name: edged, user: {token: "$EDGED_TOKEN"}}]
contexts: [{name: lab, context: {cluster: lab, user: edged}}]
current-context: lab
EOF
    cat >"$d/haproxy/haproxy.cfg" <<EOF
# The operator's own file: edged never writes it.
global
    stats socket $d/haproxy/admin.sock mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend operator-stats
    bind $ip:8404
    stats enable
    stats uri /stats
    stats refresh 5s
EOF
    : >"$d/haproxy/edged/edged.cfg"
    cat >"$d/edged.yaml" <<EOF
node: {name: edge$i, dataDir: $d/data, adminSocket: $d/admin.sock}
raft:
  bindAddress: $ip:7950
  insecurePlaintext: true   # lab only
  peers: [{id: edge1, address: "${EDGES[0]}:7950"}, {id: edge2, address: "${EDGES[1]}:7950"}, {id: edge3, address: "${EDGES[2]}:7950"}]
kubernetes: {kubeconfig: $d/kubeconfig}
pools:
  - name: primary
    addresses: ["10.4.11.0 - 10.4.15.254"]
  - name: dual
    addresses: ["10.4.10.0/28", "fd00:4::11:0/120"]
    autoAssign: false
l2Advertisements:
  - {name: primary, ipAddressPools: [primary, dual], interfaces: [eth0]}
haproxy:
  configFile: $d/haproxy/edged/edged.cfg
  operatorFile: $d/haproxy/haproxy.cfg
  masterSocket: $d/haproxy/master.sock
  statsSocket: $d/haproxy/admin.sock
  certDir: $d/haproxy/certs
metrics: {address: "$ip:7472"}
EOF
    ip netns exec "$P-$h" haproxy -W -S "$d/haproxy/master.sock" -f "$d/haproxy/haproxy.cfg" -f "$d/haproxy/edged/edged.cfg" >"$d/haproxy.log" 2>&1 &
    PIDS+=($!)
    ip netns exec "$P-$h" "$ROOT/bin/edged" run --config "$d/edged.yaml" >"$d/edged.log" 2>&1 &
    PIDS+=($!)
    eval "EDGED_PID_$h=$!"
  done
  for _ in $(seq 100); do
    ns e1 "$ROOT/bin/edged" status --socket "$WORK/e1/admin.sock" 2>/dev/null | grep -q '^leader: *edge' && return 0
    sleep 0.2
  done
  echo "no raft leader after 20s"; tail -20 "$WORK"/e*/edged.log; exit 1
}

services() {
  log "pods: labpod servers on $PODS:8080 and $PODS:5432"
  ip netns exec "$P-pods" "$WORK/labpod" -listen "$PODS:8080" -name web-pod >/dev/null 2>&1 &
  PIDS+=($!)
  ip netns exec "$P-pods" "$WORK/labpod" -listen "$PODS:5432" -name database-pod >/dev/null 2>&1 &
  PIDS+=($!)
  ip netns exec "$P-pods" "$WORK/labpod" -listen "[$PODS6]:8080" -name web-pod-ipv6 >/dev/null 2>&1 &
  PIDS+=($!)
  log "creating the seed's Services web-service (80->8080) and database (5432), with EndpointSlices"
  for svc in "web-service 80 8080 web" "database 5432 5432 database"; do
    set -- $svc
    local anno=""
    [ "$1" = web-service ] && anno='  annotations: {external-dns.alpha.kubernetes.io/hostname: web.goldentooth.net}'
    kube POST /api/v1/namespaces/default/services "apiVersion: v1
kind: Service
metadata:
  name: $1
$anno
spec:
  type: LoadBalancer
  selector: {app: $4}
  ports: [{name: p, port: $2, targetPort: $3, protocol: TCP}]" >/dev/null
    kube POST /apis/discovery.k8s.io/v1/namespaces/default/endpointslices "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $1-lab
  labels: {kubernetes.io/service-name: $1}
addressType: IPv4
ports: [{name: p, port: $3, protocol: TCP}]
endpoints: [{addresses: [\"$PODS\"], conditions: {ready: true}}]" >/dev/null
  done
  log "creating web-dual, a dual-stack Service (80->8080) from pool dual, endpoints of both families"
  kube POST /api/v1/namespaces/default/services "apiVersion: v1
kind: Service
metadata:
  name: web-dual
  annotations: {metallb.universe.tf/address-pool: dual}
spec:
  type: LoadBalancer
  ipFamilies: [IPv6, IPv4]
  ipFamilyPolicy: RequireDualStack
  selector: {app: web-dual}
  ports: [{name: p, port: 80, targetPort: 8080, protocol: TCP}]" >/dev/null
  for fam in "IPv4 $PODS" "IPv6 $PODS6"; do
    set -- $fam
    kube POST /apis/discovery.k8s.io/v1/namespaces/default/endpointslices "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-dual-$(echo "$1" | tr A-Z a-z)
  labels: {kubernetes.io/service-name: web-dual}
addressType: $1
ports: [{name: p, port: 8080, protocol: TCP}]
endpoints: [{addresses: [\"$2\"], conditions: {ready: true}}]" >/dev/null
  done
}

# vip_of SERVICE [4|6]: the Service's first ingress IP (of that family).
vip_of() {
  local pat='[0-9a-f.:]*'
  [ "${2:-}" = 4 ] && pat='[0-9.]*'
  [ "${2:-}" = 6 ] && pat='[0-9a-f:]*:[0-9a-f:]*'
  kube GET "/api/v1/namespaces/default/services/$1" | grep -o "\"ip\": *\"$pat\"" | head -1 | sed 's/.*: *"//; s/"//'
}

allocations() {
  log "waiting for edged to allocate (status.loadBalancer.ingress)"
  for _ in $(seq 100); do
    WEB=$(vip_of web-service || true); DB=$(vip_of database || true)
    DUAL4=$(vip_of web-dual 4 || true); DUAL6=$(vip_of web-dual 6 || true)
    [ -n "$WEB" ] && [ -n "$DB" ] && [ -n "$DUAL4" ] && [ -n "$DUAL6" ] && break
    sleep 0.2
  done
  echo "web-service -> ${WEB:-none}"
  echo "database    -> ${DB:-none}"
  echo "web-dual    -> ${DUAL6:-none} ${DUAL4:-none}"
  kube GET /api/v1/namespaces/default/events | grep -o '"reason": *"[A-Za-z]*"\|"message": *"[^"]*"' | paste - - | sed 's/"//g' | head -6 || true
  [ -n "$WEB" ] || { echo "no address allocated"; tail -20 "$WORK"/e*/edged.log; exit 1; }
}

# get URL: one request from the client host, retried for up to 10 s.
get() {
  for _ in $(seq 50); do
    ns cl curl -gs --max-time 1 "$1" && return 0
    sleep 0.2
  done
  echo "no answer from $1"; return 1
}

traffic() {
  log "client -> http://$WEB/, http://[$DUAL6]/ and http://$DUAL4/ (through the VIPs, HAProxy and the pods; IPv6 found by NDP)"
  local rc=0
  get "http://$WEB/" || rc=1
  if [ -n "$DUAL6" ]; then get "http://[$DUAL6]/" || rc=1; get "http://[$DUAL6]/" || rc=1; fi
  if [ -n "$DUAL4" ]; then get "http://$DUAL4/" || rc=1; fi
  return $rc
}

# owner_of IP [HOST]: the announcing host of IP in HOST's `edged status` (e1's by default).
owner_of() {
  local h=${2:-e1}
  ns "$h" "$ROOT/bin/edged" status --socket "$WORK/$h/admin.sock" 2>/dev/null |
    awk -v ip="$1" '$1 ~ /^[a-z0-9-]+\/[a-z0-9-]+$/ && $3==ip {print $4; exit}'
}

failover() {
  local owner host survivor
  owner=$(owner_of "$WEB")
  host=e${owner#edge}
  log "killing the announcing host $owner ($host): SIGKILL edged, link down"
  local pidvar=EDGED_PID_$host
  local pid=${!pidvar}
  grep -q 'edged' "/proc/$pid/cmdline" 2>/dev/null || { echo "PID $pid is not edged: refusing to report a kill"; exit 1; }
  kill -9 "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "edged (PID $pid) on $host survived SIGKILL"; exit 1; fi
  echo "edged (PID $pid) on $host is dead"
  ns "$host" ip link set eth0 down
  local start=$(date +%s%N)
  for h in e1 e2 e3; do [ "$h" != "$host" ] && survivor=$h && break; done
  local moved=
  for _ in $(seq 100); do
    local now
    now=$(owner_of "$WEB" "$survivor")
    if [ -n "$now" ] && [ "$now" != "$owner" ]; then
      echo "$WEB moved $owner -> $now after $(( ($(date +%s%N) - start) / 1000000 )) ms (raft reassignment)"
      moved=1
      break
    fi
    sleep 0.05
  done
  [ -n "$moved" ] || { echo "FAIL: $WEB did not move off $owner within 5 s"; tail -20 "$WORK"/e*/edged.log; exit 1; }
  traffic || { echo "FAIL: traffic through the VIPs after the failover"; exit 1; }
  log "edged status (from $survivor)"
  ns "$survivor" "$ROOT/bin/edged" status --socket "$WORK/$survivor/admin.sock"
  log "HAProxy stats on $survivor (frontend/backend, status, sessions; idle MAINT server slots hidden)"
  local ip=${EDGES[$(( ${survivor#e} - 1 ))]}
  ns cl curl -s "http://$ip:8404/stats;csv" | awk -F, 'NR>1 && $1!="" && $18!="MAINT" {printf "%-28s %-10s %-6s %s\n", $1, $2, $18, $8}' | head -20
}

install_deps
build
network
apiserver
rbac
edges
services
allocations
traffic || { echo "FAIL: traffic through the VIPs"; tail -20 "$WORK"/e*/edged.log; exit 1; }
failover
log "done: traffic served before and after the failover; tearing the lab down"
