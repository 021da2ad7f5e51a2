# shellcheck shell=bash
# The lab behind scripts/lab: hosts in network namespaces, a registry, a NATS cluster and
# the plane's processes. Sourced after common.sh; expects ROOT and DIR_ARG.
#
# Every name it makes is fixed (bridge qdlab0, namespaces qdlab-hN, veths qdl-hN, /run/qdlab),
# so `down` finds them even when the state a failed `up` wrote is incomplete. Processes
# are found through pid files that also hold the process's start time, so a recycled pid
# is never killed.

LAB_BRIDGE=qdlab0
LAB_NS_PREFIX=qdlab-
LAB_VETH_PREFIX=qdl-
LAB_RUN=/run/qdlab
LAB_RANGES=(198.51.100.0/24 203.0.113.0/24)
# The lab's own services (NATS, registry) listen on the bridge's az1 address: agents run
# inside their host's namespace, where the root namespace's 127.0.0.1 cannot be reached.
LAB_SVC_IP=198.51.100.1
LAB_GW=(198.51.100.1 203.0.113.1)
LAB_PREFIX=(198.51.100 203.0.113)
# Above any route the bridge's addresses make: those win while they exist.
LAB_UNREACHABLE_METRIC=4000
LAB_DEFAULT_DIR=/tmp/quarterdeck-lab

lab_dir() {
    if [[ -n "$DIR_ARG" ]]; then
        echo "$DIR_ARG"
    elif [[ -n "${QD_LAB_DIR:-}" ]]; then
        echo "$QD_LAB_DIR"
    elif [[ -s "$LAB_RUN/dir" ]]; then
        cat "$LAB_RUN/dir"
    else
        echo "$LAB_DEFAULT_DIR"
    fi
}

# Loads the lab's state (written by up) or fails saying there is no lab.
lab_load() {
    DIR=$(lab_dir)
    [[ -s "$DIR/lab.env" ]] || die "lab: no lab in $DIR (scripts/lab up first, or give --dir DIR)"
    # shellcheck source=/dev/null
    . "$DIR/lab.env"
}

need_root() { [[ $EUID -eq 0 ]] || die "lab: $1 needs root (network namespaces, dockerd)"; }

# Host i (1-based): id, AZ index (0: az1, 1: az2), address.
host_id() { echo "h$1"; }
host_az_index() { echo $((($1 - 1) % 2)); }
host_ip() { echo "${LAB_PREFIX[$(host_az_index "$1")]}.$((10 + $1))"; }
host_ns() { echo "$LAB_NS_PREFIX$(host_id "$1")"; }
host_veth() { echo "$LAB_VETH_PREFIX$(host_id "$1")"; }
host_sock() { echo "$LAB_RUN/$(host_id "$1")/docker.sock"; }

# The host index of a host id given on the command line, or an error naming the hosts.
host_index() {
    local h=$1 i
    for ((i = 1; i <= LAB_N; i++)); do
        [[ "$(host_id "$i")" == "$h" ]] && {
            echo "$i"
            return 0
        }
    done
    die "lab: no host '$h' in this lab (hosts: $LAB_HOSTS)"
}

# ---------------------------------------------------------------------------------------
# Processes

proc_start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

# start_proc NAME CMD...: runs CMD detached, its output in logs/NAME.log, its pid and start
# time in pids/NAME.pid.
start_proc() {
    local name=$1 pid
    shift
    echo "=== $(date -Is) $*" >>"$DIR/logs/$name.log"
    setsid "$@" >>"$DIR/logs/$name.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid $(proc_start_time "$pid")" >"$DIR/pids/$name.pid"
}

# wait_proc NAME SECONDS CMD...: waits for CMD to succeed while process NAME runs.
wait_proc() {
    local name=$1 deadline=$(($(now_ms) + $2 * 1000))
    shift 2
    until "$@" >/dev/null 2>&1; do
        proc_pid "$name" >/dev/null || {
            warn "$name exited; the end of its log:"
            tail -n 5 "$DIR/logs/$name.log" >&2
            return 1
        }
        (($(now_ms) < deadline)) || return 1
        sleep 0.3
    done
}

# Prints the pid of NAME if it is still the process the lab started.
proc_pid() {
    local f="$DIR/pids/$1.pid" pid start
    [[ -s "$f" ]] || return 1
    read -r pid start <"$f"
    pid_alive "$pid" || return 1
    [[ "$(proc_start_time "$pid")" == "$start" ]] || return 1
    echo "$pid"
}

# stop_proc NAME [SIGNAL] [SECONDS]: SIGNAL (TERM), then KILL after SECONDS (10).
stop_proc() {
    local name=$1 sig=${2:-TERM} secs=${3:-10} pid i
    if pid=$(proc_pid "$name"); then
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < secs * 5; i++)); do
            pid_alive "$pid" || break
            sleep 0.2
        done
        if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        for ((i = 0; i < 25; i++)); do
            pid_alive "$pid" || break
            sleep 0.2
        done
    fi
    rm -f "$DIR/pids/$name.pid"
}

# ---------------------------------------------------------------------------------------
# up

lab_up() {
    local n=4 bin=${QD_BIN:-}
    while (($# > 0)); do
        case "$1" in
        --hosts)
            if ! [[ "${2:-}" =~ ^[0-9]{1,2}$ ]] || ((10#$2 < 1 || 10#$2 > 20)); then
                die "lab up: --hosts takes a number from 1 to 20, not '${2:-}'"
            fi
            n=$((10#$2))
            shift
            ;;
        --dir)
            [[ -n "${2:-}" ]] || die "lab up: --dir needs a directory"
            DIR_ARG=$2
            shift
            ;;
        --bin)
            [[ -n "${2:-}" ]] || die "lab up: --bin needs the quarterdeck binary's path"
            bin=$2
            shift
            ;;
        *) die "lab up: unknown argument '$1' (see scripts/lab --help)" ;;
        esac
        shift
    done
    need_root "up"
    DIR_ARG=${DIR_ARG:-${QD_LAB_DIR:-$LAB_DEFAULT_DIR}}
    if [[ -e "$LAB_RUN" ]] || ip link show "$LAB_BRIDGE" >/dev/null 2>&1; then
        die "lab up: a lab is already up ($(cat "$LAB_RUN/dir" 2>/dev/null || echo 'dir unknown')); scripts/lab down first"
    fi
    # Tools first: nothing is made before they are all there.
    if [[ -z "$bin" ]]; then
        # The newer build: a stale release binary may lack flags the lab passes.
        bin=$ROOT/target/debug/quarterdeck
        if [[ -x "$ROOT/target/release/quarterdeck" && "$ROOT/target/release/quarterdeck" -nt "$bin" ]]; then
            bin=$ROOT/target/release/quarterdeck
        fi
    fi
    [[ -x "$bin" ]] || die "lab up: no quarterdeck binary at $bin (cargo build, or --bin PATH / QD_BIN)"
    local nats nginx t
    nats=$(lab_nats_bin) || die "lab up: no nats-server >= 2.10 (set NATS_SERVER_BIN or run scripts/test --services-only)"
    nginx=${QD_NGINX:-}
    [[ -n "$nginx" ]] || nginx=$(nginx_path) || die "lab up: no nginx (Debian package nginx)"
    for t in dockerd docker docker-registry nsenter ip curl python3; do
        command -v "$t" >/dev/null 2>&1 || die "lab up: '$t' is not installed (scripts/test installs docker.io, docker-registry, iproute2)"
    done
    # A dockerd started beside a system containerd uses it, and the lab's daemons would
    # share one containerd namespace: refuse instead.
    [[ ! -S /run/containerd/containerd.sock ]] ||
        die "lab up: /run/containerd/containerd.sock exists; a lab dockerd would share that containerd with the host's"

    DIR=$(mkdir -p "$DIR_ARG" && cd "$DIR_ARG" && pwd)
    # A failed up removes what it made: `down` knows every name.
    trap lab_up_failed EXIT
    mkdir -p "$DIR/logs" "$DIR/pids" "$LAB_RUN"
    echo "$DIR" >"$LAB_RUN/dir"
    local t0
    t0=$(now_ms)

    step "network: unreachable routes for ${LAB_RANGES[*]}, bridge $LAB_BRIDGE"
    local r
    for r in "${LAB_RANGES[@]}"; do
        ip route replace unreachable "$r" metric "$LAB_UNREACHABLE_METRIC"
    done
    ip link add "$LAB_BRIDGE" type bridge
    ip addr add "${LAB_GW[0]}/24" dev "$LAB_BRIDGE"
    ip addr add "${LAB_GW[1]}/24" dev "$LAB_BRIDGE"
    ip link set "$LAB_BRIDGE" up

    local hosts="" i
    for ((i = 1; i <= n; i++)); do
        lab_make_host "$i"
        hosts+="${hosts:+ }$(host_id "$i")"
    done

    step "registry on $LAB_SVC_IP"
    local reg_port
    reg_port=$(free_port)
    mkdir -p "$DIR/registry/data"
    cat >"$DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $DIR/registry/data
  delete:
    enabled: true
http:
  addr: $LAB_SVC_IP:$reg_port
EOF
    start_proc registry docker-registry serve "$DIR/registry/config.yml"
    wait_proc registry 30 curl --noproxy '*' -fsS --max-time 2 "http://$LAB_SVC_IP:$reg_port/v2/" ||
        die "registry did not answer on $LAB_SVC_IP:$reg_port; see $DIR/logs/registry.log"

    step "dockerd in each host's namespace"
    for ((i = 1; i <= n; i++)); do lab_start_dockerd "$i" "$LAB_SVC_IP:$reg_port"; done
    for ((i = 1; i <= n; i++)); do
        wait_proc "dockerd-$(host_id "$i")" 60 docker -H "unix://$(host_sock "$i")" info ||
            die "dockerd of $(host_id "$i") did not answer; see $DIR/logs/dockerd-$(host_id "$i").log"
    done

    step "roles: one NKey per process (quarterdeck auth), enforced by nats-server"
    local hosts_csv=${hosts// /,}
    "$bin" auth init --dir "$DIR/auth" --controllers c1,c2 --hosts "$hosts_csv" --routers lab \
        --operators lab --viewers viewer >>"$DIR/logs/auth.log" 2>&1 ||
        die "quarterdeck auth init failed; see $DIR/logs/auth.log"

    step "NATS cluster (3 nodes, JetStream)"
    local client=() cluster=() monitor=() k routes=""
    for k in 1 2 3; do
        client+=("$(free_port)")
        cluster+=("$(free_port)")
        monitor+=("$(free_port)")
    done
    for k in 0 1 2; do routes+="${routes:+, }nats-route://127.0.0.1:${cluster[$k]}"; done
    local urls=""
    for k in 0 1 2; do urls+="${urls:+,}nats://$LAB_SVC_IP:${client[$k]}"; done
    {
        printf 'LAB_N=%q\nLAB_HOSTS=%q\nLAB_BIN=%q\nLAB_NATS_BIN=%q\nLAB_NGINX=%q\n' \
            "$n" "$hosts" "$bin" "$nats" "$nginx"
        printf 'LAB_NATS_URL=%q\nLAB_REGISTRY=%q\n' "$urls" "$LAB_SVC_IP:$reg_port"
        printf 'LAB_AUTH=%q\n' "$DIR/auth"
        printf 'LAB_NATS_MONITOR=%q\n' "127.0.0.1:${monitor[0]},127.0.0.1:${monitor[1]},127.0.0.1:${monitor[2]}"
    } >"$DIR/lab.env.partial"
    for k in 1 2 3; do
        mkdir -p "$DIR/nats/n$k"
        cat >"$DIR/nats/n$k.conf" <<EOF
server_name: qdlab-n$k
listen: $LAB_SVC_IP:${client[$((k - 1))]}
http: 127.0.0.1:${monitor[$((k - 1))]}
jetstream {
  store_dir: "$DIR/nats/n$k"
}
include "../auth/nats-auth.conf"
cluster {
  name: qdlab
  listen: 127.0.0.1:${cluster[$((k - 1))]}
  no_advertise: true
  routes: [ $routes ]
}
EOF
        start_proc "nats-$k" "$nats" -c "$DIR/nats/n$k.conf"
    done
    for k in 0 1 2; do
        wait_proc "nats-$((k + 1))" 60 curl --noproxy '*' -fsS --max-time 2 "http://127.0.0.1:${monitor[$k]}/healthz" ||
            die "NATS node $((k + 1)) is not healthy; see $DIR/logs/nats-$((k + 1)).log"
    done
    wait_until 60 lab_meta_leader "127.0.0.1:${monitor[0]}" ||
        die "the NATS cluster elected no JetStream meta leader; see $DIR/logs/nats-*.log"

    local router_port
    router_port=$(free_port)
    printf 'LAB_ROUTER=%q\n' "127.0.0.1:$router_port" >>"$DIR/lab.env.partial"
    mv "$DIR/lab.env.partial" "$DIR/lab.env"
    lab_load

    step "controllers c1 (leader) and c2 (standby), --replicas 3"
    start_proc controller-c1 env NATS_URL="$urls" NATS_NKEY="$LAB_AUTH/controller/c1.nk" \
        "$bin" controller --id c1 --replicas 3
    wait_proc controller-c1 90 lab_ctl --timeout 2s snapshot --json ||
        die "controller c1 does not answer; see $DIR/logs/controller-c1.log"
    start_proc controller-c2 env NATS_URL="$urls" NATS_NKEY="$LAB_AUTH/controller/c2.nk" \
        "$bin" controller --id c2 --replicas 3

    step "agents (docker driver, inside each host's namespace) and the router"
    for ((i = 1; i <= n; i++)); do lab_start_agent "$i"; done
    mkdir -p "$DIR/router"
    start_proc router env NATS_URL="$urls" NATS_NKEY="$LAB_AUTH/router/lab.nk" \
        "$bin" router --id lab --listen "$LAB_ROUTER" \
        --state-dir "$DIR/router" --nginx "$nginx"
    wait_until 90 lab_hosts_up ||
        die "not every host is up in the snapshot; see $DIR/logs/agent-*.log"
    wait_proc router 30 lab_router_listening || die "the router's nginx does not listen on $LAB_ROUTER; see $DIR/logs/router.log"
    trap - EXIT
    info "lab up in $(fmt_ms $(($(now_ms) - t0))): $n hosts ($hosts), dir $DIR"
    info "next: eval \"\$(scripts/lab env)\"; quarterdeck --nats \"\$NATS_URL\""
}

# The EXIT trap of `up`: a failed up removes what it made.
lab_up_failed() {
    local rc=$?
    ((rc != 0)) || return 0
    warn "lab up failed (exit $rc); removing what it made (logs in $DIR/logs)"
    lab_down >&2 || true
}

lab_nats_bin() {
    local c
    for c in "${NATS_SERVER_BIN:-}" "${QD_NATS_SERVER:-}" "$(command -v nats-server 2>/dev/null || true)" \
        "$ROOT"/.tools/nats-server-bin-*/bin/nats-server; do
        [[ -n "$c" && -x "$c" ]] || continue
        local v
        v=$("$c" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9][0-9.]*\).*/\1/p')
        if [[ -n "$v" ]] && version_ge "$v" 2.10.0; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

nginx_path() {
    command -v nginx 2>/dev/null && return 0
    [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx
}

lab_make_host() {
    local i=$1 ns veth ip az gw
    ns=$(host_ns "$i")
    veth=$(host_veth "$i")
    ip=$(host_ip "$i")
    az=$(host_az_index "$i")
    gw=${LAB_GW[$az]}
    info "$(host_id "$i"): namespace $ns, $ip/24 (az$((az + 1))) over $veth"
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$LAB_BRIDGE"
    ip link set "$veth" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    # No default route: the host reaches its own range and the lab's services, nothing else.
    if [[ "$gw" != "$LAB_SVC_IP" ]]; then
        ip -n "$ns" route add "$LAB_SVC_IP/32" via "$gw" dev eth0
    fi
}

lab_start_dockerd() {
    local i=$1 registry=$2 h run
    h=$(host_id "$i")
    run=$LAB_RUN/$h
    mkdir -p "$run" "$DIR/hosts/$h/docker"
    # --live-restore, as a production host runs it: containers keep running while the
    # daemon restarts (an upgrade, a crash), and the agent adopts them when it is back.
    # shellcheck disable=SC2086 # extra options are split on purpose
    start_proc "dockerd-$h" nsenter --net="/var/run/netns/$(host_ns "$i")" \
        dockerd --data-root "$DIR/hosts/$h/docker" --exec-root "$run/exec" \
        --host "unix://$run/docker.sock" --pidfile "$run/docker.pid" \
        --insecure-registry "$registry" --live-restore ${QD_LAB_DOCKERD_OPTS:-}
}

lab_start_agent() {
    local i=$1 h ip az
    h=$(host_id "$i")
    ip=$(host_ip "$i")
    az=az$(($(host_az_index "$i") + 1))
    mkdir -p "$DIR/hosts/$h/agent"
    start_proc "agent-$h" nsenter --net="/var/run/netns/$(host_ns "$i")" \
        env DOCKER_HOST="unix://$(host_sock "$i")" NATS_URL="$LAB_NATS_URL" NATS_NKEY="$LAB_AUTH/agent/$h.nk" \
        "$LAB_BIN" agent --host-id "$h" --az "$az" --driver docker --ip "$ip" \
        --advertise-ip "$ip" --data-dir "$DIR/hosts/$h/agent" \
        --share-cores "$(lab_share_cores)" --share-memory "$(lab_share_memory_mb)M"
}

# Each host's share of this one machine: every dockerd reports the whole machine, and
# four hosts showing the same figures would say nothing of any one of them. Each host
# offers all the machine's cores, as VMs on one hypervisor do (a split of 2 cores over 2
# hosts left no room for a rolling deploy's extra instance); its CPU figure is then its
# own containers' use of them. Memory is split.
lab_share_cores() {
    nproc
}

lab_share_memory_mb() {
    awk -v n="$LAB_N" '/^MemTotal:/ { printf "%d\n", $2 / 1024 / n }' /proc/meminfo
}

# True when the JetStream meta group of the cluster seen from MONITOR has a leader.
lab_meta_leader() {
    local leader
    leader=$(curl --noproxy '*' -fsS --max-time 2 "http://$1/jsz" | python3 -c '
import json, sys
print((json.load(sys.stdin).get("meta_cluster") or {}).get("leader") or "")') || return 1
    [[ -n "$leader" ]]
}

# `quarterdeck ctl ARGS...` as the lab's operator.
lab_ctl() { NATS_URL="$LAB_NATS_URL" NATS_NKEY="$LAB_AUTH/operator/lab.nk" "$LAB_BIN" ctl "$@"; }

lab_hosts_up() {
    lab_ctl --timeout 2s snapshot --json | python3 -c '
import json, sys
want = set(sys.argv[1].split())
snap = json.load(sys.stdin)
up = {h["id"] for h in snap.get("hosts", []) if h.get("state") == "up"}
sys.exit(0 if want <= up else 1)' "$LAB_HOSTS"
}

lab_router_listening() {
    [[ -n "$(ss -Hltn "( sport = :${LAB_ROUTER##*:} )" 2>/dev/null)" ]]
}

# ---------------------------------------------------------------------------------------
# The other commands

lab_env() {
    (($# == 0)) || die "lab env: takes no arguments"
    lab_load
    printf 'export NATS_URL=%q\n' "$LAB_NATS_URL"
    printf 'export QD_LAB_ROUTER=%q\n' "$LAB_ROUTER"
    printf 'export QD_LAB_REGISTRY=%q\n' "$LAB_REGISTRY"
    printf 'export QD_LAB_HOSTS=%q\n' "$LAB_HOSTS"
    printf 'export QD_LAB_NATS_MONITOR=%q\n' "$LAB_NATS_MONITOR"
    printf 'export QD_LAB_DIR=%q\n' "$DIR"
    # The cockpit and ctl act as the lab's operator; the other seeds are in QD_LAB_AUTH.
    printf 'export NATS_NKEY=%q\n' "$LAB_AUTH/operator/lab.nk"
    printf 'export QD_LAB_AUTH=%q\n' "$LAB_AUTH"
}

# Prints the pushed name (docker push's progress goes to stderr).
# The registry trusts no client outside the lab, and the machine's own dockerd trusts only
# registries on 127.0.0.1: so the image goes through the first host that is not cut off,
# which pushes it and then forgets it (a host has only the images it pulled itself).
lab_push() {
    (($# >= 1 && $# <= 2)) || die "lab push: usage: scripts/lab push IMAGE [NAME]"
    lab_load
    local image=$1 name=${2:-$1} i sock="" target
    [[ "$name" =~ ^[a-z0-9]+([._/-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$ ]] ||
        die "lab push: '$name' is not an image name (lower-case path, optional :tag)"
    [[ "$name" == *:* ]] || name+=":latest"
    docker image inspect "$image" >/dev/null 2>&1 || die "lab push: no local image '$image' (docker images)"
    for ((i = 1; i <= LAB_N; i++)); do
        if [[ "$(cat "/sys/class/net/$(host_veth "$i")/operstate" 2>/dev/null)" == up ]]; then
            sock=$(host_sock "$i")
            break
        fi
    done
    [[ -n "$sock" ]] || die "lab push: every host is cut off; heal one first"
    target="$LAB_REGISTRY/$name"
    docker save "$image" | docker -H "unix://$sock" load >/dev/null
    docker -H "unix://$sock" tag "$image" "$target"
    docker -H "unix://$sock" push "$target" >&2
    docker -H "unix://$sock" rmi "$target" "$image" >/dev/null
    echo "$target"
}

lab_docker() {
    (($# >= 1)) || die "lab docker: usage: scripts/lab docker HOST ARGS..."
    lab_load
    local i
    i=$(host_index "$1")
    shift
    exec docker -H "unix://$(host_sock "$i")" "$@"
}

lab_partition() {
    (($# == 1)) || die "lab partition: usage: scripts/lab partition HOST"
    need_root partition
    lab_load
    local i
    i=$(host_index "$1")
    ip link set "$(host_veth "$i")" down
    info "$1 is cut off ($(host_veth "$i") down); its containers keep running"
}

lab_heal() {
    (($# == 1)) || die "lab heal: usage: scripts/lab heal HOST"
    need_root heal
    lab_load
    local i
    i=$(host_index "$1")
    ip link set "$(host_veth "$i")" up
    info "$1 is back on the network"
}

# chaos --lab [FILTER]: the lab tests, one lab each (their names are fixed, so none may be
# up), then the figures they printed.
lab_scenarios() {
    (($# <= 1)) || die "lab chaos --lab: usage: scripts/lab chaos --lab [FILTER]"
    need_root "chaos --lab"
    [[ ! -s "$LAB_RUN/dir" ]] || die "lab chaos --lab: a lab is up ($(cat "$LAB_RUN/dir")); scripts/lab down first"
    local filter=lab_${1:-} log rc=0
    cd "$ROOT" || return 1
    eval "$(./scripts/test --services-only)"
    log=$(mktemp /tmp/quarterdeck-lab-scenarios.XXXXXX)
    cargo test --test integration "$filter" -- --nocapture --test-threads 1 2>&1 | tee "$log" || rc=$?
    printf '\n--- figures (full output in %s)\n' "$log"
    # --nocapture puts a test's first line after its name: -o takes the figure alone.
    grep -oE 'figure:.*|test result:.*' "$log" || true
    return "$rc"
}

# restart-docker HOST: stops the host's dockerd as a service manager would (TERM, which
# stops its containers unless they outlive it) and starts it again with the same options.
lab_restart_docker() {
    (($# == 1)) || die "lab restart-docker: usage: scripts/lab restart-docker HOST"
    need_root restart-docker
    lab_load
    local i h
    i=$(host_index "$1")
    h=$(host_id "$i")
    proc_pid "dockerd-$h" >/dev/null || die "lab restart-docker: the dockerd of $h is not running"
    stop_proc "dockerd-$h" TERM 40
    lab_start_dockerd "$i" "$LAB_REGISTRY"
    wait_proc "dockerd-$h" 60 docker -H "unix://$(host_sock "$i")" info ||
        die "dockerd of $h did not answer after its restart; see $DIR/logs/dockerd-$h.log"
    info "dockerd of $h restarted"
}

# kill-controller ID: kill -9 one controller (c1 or c2), as a crash of its machine would.
lab_kill_controller() {
    (($# == 1)) || die "lab kill-controller: usage: scripts/lab kill-controller c1|c2"
    [[ "$1" =~ ^c[12]$ ]] || die "lab: the controller is c1 or c2, not '$1'"
    lab_load
    proc_pid "controller-$1" >/dev/null || die "lab kill-controller: controller $1 is not running"
    stop_proc "controller-$1" KILL 5
    info "controller $1 killed (-9)"
}

# start-controller ID: starts controller c1 or c2 again (it comes back as the standby
# when the other one holds the lease).
lab_start_controller() {
    (($# == 1)) || die "lab start-controller: usage: scripts/lab start-controller c1|c2"
    [[ "$1" =~ ^c[12]$ ]] || die "lab: the controller is c1 or c2, not '$1'"
    lab_load
    ! proc_pid "controller-$1" >/dev/null || die "lab start-controller: controller $1 is already running"
    start_proc "controller-$1" env NATS_URL="$LAB_NATS_URL" NATS_NKEY="$LAB_AUTH/controller/$1.nk" \
        "$LAB_BIN" controller --id "$1" --replicas 3
    info "controller $1 started"
}

nats_node() {
    [[ "${1:-}" =~ ^[123]$ ]] || die "lab: the NATS node is 1, 2 or 3, not '${1:-}'"
}

lab_kill_nats() {
    (($# == 1)) || die "lab kill-nats: usage: scripts/lab kill-nats N"
    nats_node "$1"
    lab_load
    proc_pid "nats-$1" >/dev/null || die "lab kill-nats: NATS node $1 is not running"
    stop_proc "nats-$1" KILL 5
    info "NATS node $1 killed (-9)"
}

lab_start_nats() {
    (($# == 1)) || die "lab start-nats: usage: scripts/lab start-nats N"
    nats_node "$1"
    lab_load
    ! proc_pid "nats-$1" >/dev/null || die "lab start-nats: NATS node $1 is already running"
    start_proc "nats-$1" "$LAB_NATS_BIN" -c "$DIR/nats/n$1.conf"
    local monitor
    IFS=, read -r -a monitor <<<"$LAB_NATS_MONITOR"
    wait_until 60 curl --noproxy '*' -fsS --max-time 2 "http://${monitor[$(($1 - 1))]}/healthz" ||
        die "NATS node $1 is not healthy; see $DIR/logs/nats-$1.log"
    info "NATS node $1 started"
}

# ---------------------------------------------------------------------------------------
# down

lab_down() {
    need_root down
    DIR=$(lab_dir)
    local name f
    # The plane first (it would act on the hosts going away), then the daemons, then the
    # network, the unreachable routes last.
    if [[ -d "$DIR/pids" ]]; then
        stop_proc router
        if [[ -s "$DIR/router/nginx.pid" ]]; then lab_stop_pid_of "$DIR/router/nginx.pid" nginx; fi
        for f in "$DIR"/pids/agent-*.pid "$DIR"/pids/controller-*.pid; do
            [[ -e "$f" ]] || continue
            name=$(basename "$f" .pid)
            stop_proc "$name"
        done
        # With --live-restore a daemon that exits leaves its containers running: each
        # daemon removes them first, all hosts at once.
        for f in "$DIR"/pids/dockerd-*.pid; do
            [[ -e "$f" ]] || continue
            lab_remove_containers "$(basename "$f" .pid)" &
        done
        wait
        for f in "$DIR"/pids/dockerd-*.pid; do
            [[ -e "$f" ]] || continue
            stop_proc "$(basename "$f" .pid)" TERM 40 &
        done
        wait
        for f in "$DIR"/pids/*.pid; do
            [[ -e "$f" ]] || continue
            stop_proc "$(basename "$f" .pid)"
        done
    fi
    lab_stop_leftovers
    lab_unmount_under "$LAB_RUN"
    if [[ -d "$DIR/hosts" ]]; then lab_unmount_under "$DIR/hosts"; fi
    local ns link r
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        if [[ "$ns" == "$LAB_NS_PREFIX"* ]]; then ip netns del "$ns" 2>/dev/null || true; fi
    done
    for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
        # Deleting a namespace takes its veth pair with it, a moment later.
        if [[ "$link" == "$LAB_VETH_PREFIX"* ]]; then ip link del "$link" 2>/dev/null || true; fi
    done
    ip link del "$LAB_BRIDGE" 2>/dev/null || true
    for r in "${LAB_RANGES[@]}"; do
        while ip route del unreachable "$r" metric "$LAB_UNREACHABLE_METRIC" 2>/dev/null; do :; done
    done
    rm -rf "$LAB_RUN"
    # What the daemons stored goes; the logs stay for a look afterwards.
    if [[ -d "$DIR" ]]; then
        rm -rf "$DIR/hosts" "$DIR/nats" "$DIR/registry" "$DIR/router" "$DIR/auth" "$DIR/pids" \
            "$DIR/lab.env" "$DIR/lab.env.partial"
    fi
    info "lab down: no namespaces, links, routes or processes of the lab are left"
}

# lab_remove_containers dockerd-hN: every container of that host's daemon goes (kill, then
# remove), if the daemon still answers.
lab_remove_containers() {
    local sock="$LAB_RUN/${1#dockerd-}/docker.sock" ids
    proc_pid "$1" >/dev/null && [[ -S "$sock" ]] || return 0
    ids=$(timeout 20 docker -H "unix://$sock" ps -aq 2>/dev/null) || return 0
    [[ -n "$ids" ]] || return 0
    # shellcheck disable=SC2086 # one id a word
    timeout 40 docker -H "unix://$sock" rm -f $ids >/dev/null 2>&1 || true
}

# lab_stop_pid_of FILE COMM: stops the process in FILE if its name is COMM.
lab_stop_pid_of() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 0
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$2" ]] || return 0
    stop_pid "$pid"
}

# Processes a killed dockerd leaves (its containerd, shims and proxies) name the lab's own
# paths on their command line: found by that and by their program's name, stopped by pid.
lab_stop_leftovers() {
    local p cmd comm
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
        case "$comm" in
        dockerd | containerd | containerd-shim* | docker-proxy | nats-server | docker-registry | quarterdeck | nginx) ;;
        *) continue ;;
        esac
        cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
        if [[ "$cmd" == *"$LAB_RUN/"* || (-n "$DIR" && "$cmd" == *" $DIR/"*) ]]; then
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
}

lab_unmount_under() {
    local base=$1 m
    # Deepest first.
    awk -v b="$base/" 'index($2, b) == 1 { print $2 }' /proc/mounts | sort -r |
        while IFS= read -r m; do
            umount -l "$m" 2>/dev/null || true
        done
}
