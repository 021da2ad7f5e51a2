# shellcheck shell=bash
# Shared helpers for scripts/test. Sourced, not executed.
# Everything here logs to stderr, so stdout stays free for machine-readable output
# (`./scripts/test --services-only` prints `export ...` lines there).

is_ci() { [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; }

step() { printf '\n==> %s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# Milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Formats a duration in ms as seconds with one decimal.
fmt_ms() { printf '%d.%ds' $(($1 / 1000)) $((($1 % 1000) / 100)); }

# Step timing table: record_time NAME MS
STEP_TIME_NAMES=()
STEP_TIME_MS=()
record_time() {
    STEP_TIME_NAMES+=("$1")
    STEP_TIME_MS+=("$2")
}

# Service problems, collected so every service is tried before CI fails.
SERVICE_PROBLEMS=()
problem() {
    SERVICE_PROBLEMS+=("$*")
    warn "$*"
}

# version_ge A B: true when version A >= version B (dotted numbers).
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }

# Prints a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' && return 0
    fi
    local p
    for _ in $(seq 1 200); do
        p=$((30000 + (RANDOM * 32768 + RANDOM) % 25000))
        if [[ -z "$(ss -Hltn "( sport = :$p )" 2>/dev/null)" ]]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# http_get URL: prints the body of a GET to a 127.0.0.1 URL; fails on errors and non-2xx.
http_get() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 5 "$1"
        return
    fi
    # Fallback without curl: plain HTTP/1.0 over bash's /dev/tcp (loopback only).
    local rest host port path status line
    rest=${1#http://}
    host=${rest%%/*}
    path=/${rest#*/}
    port=${host##*:}
    host=${host%%:*}
    exec 7<>"/dev/tcp/$host/$port" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$host" >&7
    IFS= read -r -t 5 status <&7 || { exec 7<&-; return 1; }
    while IFS= read -r -t 5 line <&7 && [[ "${line%$'\r'}" != "" ]]; do :; done
    cat <&7
    exec 7<&-
    [[ "$status" =~ ^HTTP/[0-9.]+\ 2 ]]
}

# wait_until SECONDS CMD...: polls CMD every 0.2 s until it succeeds or time runs out.
wait_until() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    until "$@" >/dev/null 2>&1; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.2
    done
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
    [[ -r /proc/$1/stat ]] || return 1
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [[ -n "$state" && "$state" != Z ]]
}

# stop_pid PID: TERM, wait up to 10 s, then KILL. Only for processes this script started.
stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        pid_alive "$pid" || break
        sleep 0.2
    done
    if pid_alive "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}
