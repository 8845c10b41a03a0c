#!/usr/bin/env bash
# The local stack: moto (AWS), etcd + kube-apiserver + kube-controller-manager
# + kube-scheduler + kwok (Kubernetes with fake nodes) and PostgreSQL, all on
# loopback, and the agent (tests/stack/fabric/agent.py) that gives the node
# groups in moto their nodes, pods their branch interfaces and addresses, runs
# Job pods, and enforces the VPC's security groups, network ACLs and routes on
# packets inside network namespaces it creates (as root).
#
#   scripts/stack.sh up       start what is not running, wait until each answers,
#                             write $STACK_DIR/endpoints.json and print it
#   scripts/stack.sh down     stop everything (state is kept)
#   scripts/stack.sh reset    stop everything and delete the state
#   scripts/stack.sh status   show what runs
#   scripts/stack.sh check-clean
#                             fail if a network namespace, link or nftables table
#                             of the agent is left (after down)
#
# Settings (environment): LAYERED_STACK_DIR (default <repo>/.stack),
# LAYERED_MOTO_PORT (4566), LAYERED_KUBE_PORT (16443), LAYERED_ETCD_PORT (12379),
# LAYERED_PG_PORT (15432), LAYERED_AWS_REGION (eu-west-1),
# LAYERED_SA_ISSUER (service-account issuer URL, default https://127.0.0.1:<kube port>),
# LAYERED_SA_KEY_FILE (service-account signing key; generated when absent),
# LAYERED_API_AUDIENCES (default https://kubernetes.default.svc,sts.amazonaws.com),
# LAYERED_WEBHOOK_PORT (16444, the agent's admission webhook),
# LAYERED_KUBELET_PORT (10250, kwok's kubelet server for every node: pod logs),
# LAYERED_NODE_PROXY_PORT (16445, the CONNECT proxy kube-apiserver reaches nodes through),
# LAYERED_NETNS_PREFIX (lr, the agent's network namespaces).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
stack_dir=${LAYERED_STACK_DIR:-$repo/.stack}
py="$repo/.venv/bin/python"
moto_port=${LAYERED_MOTO_PORT:-4566}
kube_port=${LAYERED_KUBE_PORT:-16443}
etcd_port=${LAYERED_ETCD_PORT:-12379}
etcd_peer_port=$((etcd_port + 1))
cm_port=${LAYERED_CM_PORT:-10257}
sched_port=${LAYERED_SCHED_PORT:-10259}
kubelet_port=${LAYERED_KUBELET_PORT:-10250}
node_proxy_port=${LAYERED_NODE_PROXY_PORT:-16445}
webhook_port=${LAYERED_WEBHOOK_PORT:-16444}
netns_prefix=${LAYERED_NETNS_PREFIX:-lr}
pg_port=${LAYERED_PG_PORT:-15432}
region=${LAYERED_AWS_REGION:-eu-west-1}
sa_issuer=${LAYERED_SA_ISSUER:-https://127.0.0.1:$kube_port}
sa_key=${LAYERED_SA_KEY_FILE:-$stack_dir/pki/sa.key}
api_audiences=${LAYERED_API_AUDIENCES:-https://kubernetes.default.svc,sts.amazonaws.com}
pki="$stack_dir/pki"
# PostgreSQL refuses to run as root; as root it runs as Debian's 'postgres'
# account, which may not be able to traverse a checkout under a private home
# directory, so its state then lives under that account's own home.
if [[ $(id -u) -eq 0 ]]; then
  pg_dir="/var/lib/postgresql/layered-eks-rds/$(printf '%s' "$stack_dir" | sha256sum | cut -c1-12)"
else
  pg_dir="$stack_dir/pg"
fi
logs="$stack_dir/logs"
run="$stack_dir/run"

log() { printf '[stack] %s\n' "$*"; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

pid_alive() { [[ -f "$run/$1.pid" ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

# start NAME CMD...: run CMD in the background (own process group), pid in run/NAME.pid
start() {
  local name=$1; shift
  if pid_alive "$name"; then log "$name already running (pid $(cat "$run/$name.pid"))"; return; fi
  log "starting $name"
  setsid "$@" >"$logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$run/$name.pid"
}

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds
wait_for() {
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! pid_alive "$name"; then
      tail -n 30 "$logs/$name.log" >&2 || true
      die "$name exited; see $logs/$name.log"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 30 "$logs/$name.log" >&2 || true
      die "$name did not answer within ${seconds}s; see $logs/$name.log"
    fi
    sleep 0.5
  done
  log "${WAIT_LABEL:-$name} is up"
}

stop() {
  local name=$1
  if pid_alive "$name"; then
    local pid; pid=$(cat "$run/$name.pid")
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$run/$name.pid"
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$d" ]] || die "PostgreSQL server binaries not found (make setup installs Debian's postgresql)"
  echo "$d"
}

# PostgreSQL refuses to run as root: use the Debian 'postgres' account then.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

kubeconfig() { # kubeconfig FILE USER CERT KEY
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster:
      server: https://127.0.0.1:$kube_port
      certificate-authority: $pki/ca.crt
users:
  - name: $2
    user:
      client-certificate: $pki/$3
      client-key: $pki/$4
contexts:
  - name: local
    context:
      cluster: local
      user: $2
current-context: local
EOF
  chmod 600 "$1"
}

up_pki() {
  mkdir -p "$pki" "$logs" "$run"
  chmod 700 "$stack_dir"
  chmod 700 "$pki"
  "$py" "$repo/tests/stack/pki.py" "$pki" --sa-key "$sa_key"
  kubeconfig "$stack_dir/kubeconfig" layered-admin admin.crt admin.key
  kubeconfig "$stack_dir/controller-manager.kubeconfig" system:kube-controller-manager \
    controller-manager.crt controller-manager.key
  kubeconfig "$stack_dir/scheduler.kubeconfig" system:kube-scheduler scheduler.crt scheduler.key
}

up_moto() {
  # STS fetches web identity issuers' keys over TLS; the local issuer's chain comes from the stack's CA
  start moto env LAYERED_OIDC_CA_FILE="$pki/ca.crt" "$py" "$repo/tests/stack/moto_server.py" \
    --host 127.0.0.1 --port "$moto_port"
  wait_for moto 60 curl -fsS "http://127.0.0.1:$moto_port/moto-api/"
}

up_kubernetes() {
  local bin
  bin=$("$repo/scripts/build-k8s.sh" --print-bin-dir)
  [[ -x "$bin/kube-apiserver" ]] || die "kube-apiserver not built; run scripts/build-k8s.sh (make setup does)"
  start etcd "$bin/etcd" --name local --data-dir "$stack_dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "local=http://127.0.0.1:$etcd_peer_port" \
    --listen-metrics-urls "" --log-level warn
  wait_for etcd 60 curl -fsS "http://127.0.0.1:$etcd_port/health"

  # the nodes' addresses are in the VPC, which the host cannot reach: kube-apiserver reaches
  # their kubelet port (pod logs) through a CONNECT proxy that leads to kwok's server
  start node-proxy "$py" "$repo/tests/stack/node_proxy.py" --listen "127.0.0.1:$node_proxy_port" --port "$kubelet_port"
  start kube-apiserver env HTTPS_PROXY="http://127.0.0.1:$node_proxy_port" NO_PROXY=127.0.0.1,localhost,10.96.0.0/16 \
    "$bin/kube-apiserver" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$kube_port" \
    --tls-cert-file "$pki/apiserver-chain.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer "$sa_issuer" \
    --service-account-key-file "${sa_key%.key}.pub" \
    --service-account-signing-key-file "$sa_key" \
    --api-audiences "$api_audiences" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true --profiling=false --enable-priority-and-fairness=false \
    --cert-dir "$pki"
  wait_for kube-apiserver 120 curl -fsS --cacert "$pki/ca.crt" "https://127.0.0.1:$kube_port/readyz"

  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$stack_dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$stack_dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$stack_dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$cm_port" --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$sa_key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --cluster-cidr 10.244.0.0/16 --service-cluster-ip-range 10.96.0.0/16 \
    --cert-dir "$pki/controller-manager-serving" --profiling=false
  wait_for kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$cm_port/healthz"
  # the namespace controller and the service-account controller are ready once
  # 'default' has its ServiceAccount
  WAIT_LABEL="service-account controller" wait_for kube-controller-manager 60 curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" \
    --key "$pki/admin.key" "https://127.0.0.1:$kube_port/api/v1/namespaces/default/serviceaccounts/default"
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$stack_dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$stack_dir/scheduler.kubeconfig" \
    --authorization-kubeconfig "$stack_dir/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$sched_port" --leader-elect=false \
    --cert-dir "$pki/scheduler-serving" --profiling=false
  wait_for kube-scheduler 60 curl -fsSk "https://127.0.0.1:$sched_port/healthz"
  # the custom resource definitions EKS installs in every cluster (SecurityGroupPolicy)
  "$py" "$repo/tests/stack/crds.py" "$stack_dir/kubeconfig" | sed 's/^/[stack] /'
  # kwok keeps the agent's fake nodes Ready (renewing their leases, or the node lifecycle
  # controller marks them Unknown and their pods not ready) and runs the pods that only need
  # to look like they run; pods of Jobs are left to the agent (tests/stack/kwok/pod-stages.yaml)
  local kwok_dir
  kwok_dir=$("$repo/scripts/build-k8s.sh" --print-kwok-dir)
  [[ -x "$kwok_dir/bin/kwok" ]] || die "kwok not built; run scripts/build-k8s.sh (make setup does)"
  "$py" "$repo/tests/stack/crds.py" "$stack_dir/kubeconfig" "$kwok_dir/crd/kwok.x-k8s.io_logs.yaml" \
    | sed 's/^/[stack] /'
  start kwok "$kwok_dir/bin/kwok" --kubeconfig "$stack_dir/kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-port "$kubelet_port" --server-address "127.0.0.1:$kubelet_port" --enable-crds Logs \
    --node-lease-duration-seconds 40 \
    --config "$kwok_dir/stage/node/fast/node-initialize.yaml" \
    --config "$kwok_dir/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
    --config "$repo/tests/stack/kwok/pod-stages.yaml"
  sleep 1
  pid_alive kwok || { tail -n 30 "$logs/kwok.log" >&2; die "kwok exited; see $logs/kwok.log"; }
  log "kwok is up"
}

up_agent() {
  local fabric=()
  if [[ $(id -u) -ne 0 ]]; then
    log "not root: the agent makes nodes and branch interfaces but enforces nothing on packets"
    fabric=(--no-fabric)
  fi
  pid_alive agent || rm -f "$stack_dir/fabric/state.json"
  start agent "$py" "$repo/tests/stack/fabric/agent.py" --stack-dir "$stack_dir" \
    --kubeconfig "$stack_dir/kubeconfig" --moto-url "http://127.0.0.1:$moto_port" --moto-port "$moto_port" \
    --pg-port "$pg_port" --region "$region" --webhook-port "$webhook_port" --prefix "$netns_prefix" "${fabric[@]}"
  WAIT_LABEL="agent (first pass)" wait_for agent 60 test -s "$stack_dir/fabric/state.json"
}

down_agent() {
  stop agent
  if [[ $(id -u) -eq 0 ]] && [[ -x "$py" ]]; then
    "$py" "$repo/tests/stack/fabric/agent.py" --cleanup --prefix "$netns_prefix" | sed 's/^/[stack] agent /'
  fi
}

up_postgres() {
  local bin data="$pg_dir/data"
  bin=$(pg_bin)
  # state outside the stack dir (as root) can outlive it: without the superuser password
  # kept in the stack dir nobody can log in, so it is started again from scratch
  if [[ -f "$data/PG_VERSION" && ! -f "$stack_dir/postgres.password" ]]; then
    log "PostgreSQL in $pg_dir has no password file in $stack_dir (a removed checkout's); starting it over"
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
  if [[ ! -f "$data/PG_VERSION" ]]; then
    log "initialising PostgreSQL in $data"
    mkdir -p "$data"
    chmod 700 "$pg_dir" "$data"
    # a random superuser password, kept only in a 0600 file of the stack dir
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$stack_dir/postgres.password"
    chmod 600 "$stack_dir/postgres.password"
    install -m 600 "$stack_dir/postgres.password" "$pg_dir/pwfile"
    if [[ $(id -u) -eq 0 ]]; then chown -R postgres: "$pg_dir"; fi
    as_pg "$bin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      --pwfile="$pg_dir/pwfile" -E UTF8 >"$logs/postgres-init.log"
    rm -f "$pg_dir/pwfile"
  fi
  pg_changed=0
  # on every start: pki.py issues the certificate again when it lacks the RDS endpoint names
  pg_file 600 "$pki/postgres.crt" "$data/server.crt"
  pg_file 600 "$pki/postgres.key" "$data/server.key"
  pg_file 644 "$pki/ca.crt" "$data/root.crt"
  # RDS's rules (rds.force_ssl=1): TLS only for TCP clients; members of rds_iam log in
  # with an IAM token (PAM, checked by moto), everyone else with a password
  up_rds_iam_pam
  "$py" "$repo/tests/stack/rds_iam_setup.py" hba ${rds_iam_service:+--service "$rds_iam_service"} \
    >"$pg_dir/pg_hba.conf.new"
  pg_file 600 "$pg_dir/pg_hba.conf.new" "$data/pg_hba.conf"
  rm -f "$pg_dir/pg_hba.conf.new"
  mkdir -p "$pg_dir/run"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$pg_dir/run"; fi
  if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting postgres"
    as_pg "$bin/pg_ctl" -D "$data" -l "$pg_dir/postgres.log" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_dir/run -c ssl=on \
-c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=root.crt \
-c password_encryption=scram-sha-256 -c log_connections=on" >/dev/null
  elif (( pg_changed )); then
    log "reloading postgres (certificate or pg_hba.conf changed)"
    as_pg "$bin/pg_ctl" -D "$data" reload >/dev/null
  fi
  wait_for_pg
  pg_rds_roles
}

# pg_file MODE SRC DEST: copy SRC to DEST (owned by postgres) when they differ; sets pg_changed=1
pg_file() {
  if cmp -s "$2" "$3"; then return; fi
  install -m "$1" "$2" "$3"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$3"; fi
  pg_changed=1
}

# the PAM service of this stack (one per stack dir, as its PostgreSQL data dir)
rds_iam_pam_service() {
  echo "layered-rds-iam-$(printf '%s' "$stack_dir" | sha256sum | cut -c1-12)"
}

# /etc/pam.d/<service> runs tests/stack/rds_iam_pam.py (a copy in $pg_dir/pam), which asks moto's
# /moto-api/layered/rds-iam-auth about each token and logs each attempt in $pg_dir/rds-iam-auth.log;
# sets rds_iam_service (empty when no PAM service can be installed: rds_iam members are then refused)
up_rds_iam_pam() {
  rds_iam_service=""
  if [[ $(id -u) -ne 0 ]]; then
    log "not root: no PAM service for IAM database authentication, members of rds_iam are refused"
    return
  fi
  rds_iam_service=$(rds_iam_pam_service)
  "$py" "$repo/tests/stack/rds_iam_setup.py" install --dir "$pg_dir/pam" --service "$rds_iam_service" \
    --url "http://127.0.0.1:$moto_port/moto-api/layered/rds-iam-auth" --log "$pg_dir/rds-iam-auth.log" \
    --owner postgres | sed 's/^/[stack] /'
}

down_rds_iam_pam() {
  local service
  service=$(rds_iam_pam_service)
  if [[ -f "/etc/pam.d/$service" ]] && rm -f "/etc/pam.d/$service"; then log "removed /etc/pam.d/$service"; fi
}

# the roles RDS has in every instance: rds_iam (IAM token logins) and rds_superuser (master users)
pg_rds_roles() {
  local statement
  statement="DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN CREATE ROLE rds_iam NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_superuser') THEN CREATE ROLE rds_superuser NOLOGIN; END IF;
END \$\$;"
  if [[ $(id -u) -eq 0 ]]; then
    as_pg "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$pg_dir/run" -p "$pg_port" -U postgres -d postgres \
      -c "$statement" >/dev/null
  else
    PGPASSWORD=$(cat "$stack_dir/postgres.password") "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 \
      "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres sslmode=verify-full sslrootcert=$pki/ca.crt" \
      -c "$statement" >/dev/null
  fi
}

wait_for_pg() {
  local deadline=$((SECONDS + 60))
  until "$(pg_bin)/pg_isready" -h 127.0.0.1 -p "$pg_port" -q; do
    (( SECONDS < deadline )) || die "postgres did not answer; see $pg_dir/postgres.log"
    sleep 0.5
  done
  log "postgres is up"
}

write_endpoints() {
  cat >"$stack_dir/endpoints.json" <<EOF
{
  "aws_endpoint_url": "http://127.0.0.1:$moto_port",
  "aws_region": "$region",
  "kubeconfig": "$stack_dir/kubeconfig",
  "kube_api": "https://127.0.0.1:$kube_port",
  "kube_ca_file": "$pki/ca.crt",
  "sa_issuer": "$sa_issuer",
  "sa_signing_key_file": "$sa_key",
  "api_audiences": "$api_audiences",
  "etcd": "http://127.0.0.1:$etcd_port",
  "postgres_host": "127.0.0.1",
  "postgres_port": $pg_port,
  "postgres_superuser": "postgres",
  "postgres_password_file": "$stack_dir/postgres.password",
  "postgres_ca_file": "$pki/ca.crt",
  "postgres_data_dir": "$pg_dir/data"
}
EOF
  chmod 600 "$stack_dir/endpoints.json"
}

case "${1:-}" in
  up)
    up_pki
    up_moto
    up_kubernetes
    up_postgres
    write_endpoints
    up_agent
    log "endpoints written to $stack_dir/endpoints.json"
    cat "$stack_dir/endpoints.json"
    ;;
  down)
    down_agent
    for s in kwok kube-scheduler kube-controller-manager kube-apiserver node-proxy etcd moto; do stop "$s"; done
    if [[ -f "$pg_dir/data/PG_VERSION" ]]; then
      as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
      log "postgres stopped"
    fi
    down_rds_iam_pam
    ;;
  reset)
    "$0" down
    rm -rf "$stack_dir" "$pg_dir"
    log "removed $stack_dir and $pg_dir"
    ;;
  check-clean)
    # what the agent creates lives in namespaces named <prefix>-*: nothing of it may outlive 'down'
    left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$netns_prefix-" || true)
    [[ -z "$left" ]] || die "network namespaces left behind: $left"
    links=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep "^$netns_prefix[0-9a-f]\{8\}" || true)
    [[ -z "$links" ]] || die "links left behind in the host namespace: $links"
    if command -v nft >/dev/null && nft list tables 2>/dev/null | grep -q layered; then
      die "nftables table left behind in the host namespace"
    fi
    pid_alive agent && die "the agent still runs"
    [[ ! -e /run/layered-eks-rds ]] || die "the agent's trust store is left in /run/layered-eks-rds"
    log "nothing of the stack's network is left"
    ;;
  status)
    for s in moto etcd node-proxy kube-apiserver kube-controller-manager kube-scheduler kwok agent; do
      if pid_alive "$s"; then echo "$s: running (pid $(cat "$run/$s.pid"))"; else echo "$s: stopped"; fi
    done
    if "$(pg_bin)/pg_isready" -h 127.0.0.1 -p "$pg_port" -q 2>/dev/null; then
      echo "postgres: running"; else echo "postgres: stopped"; fi
    ;;
  *)
    echo "usage: $0 up|down|reset|status|check-clean" >&2
    exit 2
    ;;
esac
