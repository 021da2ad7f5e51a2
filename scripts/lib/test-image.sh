# shellcheck shell=bash
# Builds and checks the local test image (see docker/test-httpd/README.md). Nothing can be
# pulled on the test machines, so the image is a busybox-static rootfs made here and loaded
# with `docker import`. Sourced by scripts/test after common.sh and services.sh.

: "${ROOT:?}"
TEST_IMAGE_LABEL=org.quarterdeck.test-image.hash
TEST_IMAGE_INPUTS="$ROOT/docker/test-httpd/rootfs"
TEST_IMAGE_RECIPE="${BASH_SOURCE[0]}"

# A short hash of everything that goes into the image: the busybox binary, the files under
# docker/test-httpd/rootfs and this recipe. Same hash => same image, no rebuild.
test_image_hash() {
    local busybox=$1
    {
        sha256sum <"$busybox"
        sha256sum <"$TEST_IMAGE_RECIPE"
        (cd "$TEST_IMAGE_INPUTS" && find . \( -type f -o -type l \) -print0 |
            LC_ALL=C sort -z | xargs -0 -r sha256sum)
    } | sha256sum | cut -c1-16
}

build_test_image() {
    local busybox=$1 hash=$2 root p old new
    root=$(mktemp -d)
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,app,tmp,root,proc,sys,dev}
    cp "$busybox" "$root/bin/busybox"
    chmod 755 "$root/bin/busybox"
    # One symlink per applet, at the path busybox itself lists (bin/sh, usr/sbin/httpd, ...).
    while read -r p; do
        case "$p" in "" | linuxrc | bin/busybox) continue ;; esac
        mkdir -p "$root/$(dirname "$p")"
        [[ -e "$root/$p" || -L "$root/$p" ]] || ln -s /bin/busybox "$root/$p"
    done < <("$busybox" --list-full)
    cp -a "$TEST_IMAGE_INPUTS/." "$root/"
    chmod 755 "$root" "$root/app"
    chmod 1777 "$root/tmp"

    old=$(docker image inspect --format '{{.Id}}' "$QD_TEST_IMAGE" 2>/dev/null || true)
    if ! new=$(tar --numeric-owner --owner=0 --group=0 -C "$root" -cf - . |
        docker import \
            --change "LABEL $TEST_IMAGE_LABEL=$hash" \
            --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'WORKDIR /' \
            --change 'EXPOSE 80' \
            --change 'CMD ["/usr/sbin/httpd", "-f", "-v", "-p", "80", "-h", "/app"]' \
            --message "quarterdeck test image (busybox httpd), made by scripts/test" \
            - "$QD_TEST_IMAGE"); then
        rm -rf "$root"
        return 1
    fi
    rm -rf "$root"
    info "imported $QD_TEST_IMAGE ($new, $(docker image inspect --format '{{.Size}}' "$QD_TEST_IMAGE") bytes)"
    # The previous build is now untagged: drop it unless a container still uses it.
    if [[ -n "$old" && "$old" != "$new" ]]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
}

# Runs the image as the tests will: publishes on 127.0.0.1, serves a bind-mounted dir.
verify_test_image() {
    local dir port name token body rc=1 deadline
    dir=$(mktemp -d)
    chmod 755 "$dir"
    token="quarterdeck-selftest-$$-$RANDOM"
    echo "$token" >"$dir/index.html"
    chmod 644 "$dir/index.html"
    port=$(free_port) || {
        rm -rf "$dir"
        return 1
    }
    name="qd-selftest-$$-$RANDOM"
    if ! docker run -d --name "$name" -p "127.0.0.1:$port:80" -v "$dir:/app:ro" \
        "$QD_TEST_IMAGE" >/dev/null 2>"$dir/run.err"; then
        sed 's/^/      /' "$dir/run.err" >&2
        docker rm -f "$name" >/dev/null 2>&1 || true
        rm -rf "$dir"
        return 1
    fi
    deadline=$(($(now_ms) + 15000))
    while (($(now_ms) < deadline)); do
        if body=$(http_get "http://127.0.0.1:$port/index.html" 2>/dev/null) &&
            [[ "$body" == "$token" ]]; then
            rc=0
            break
        fi
        sleep 0.2
    done
    if ((rc == 0)); then
        info "smoke test: container published on 127.0.0.1:$port served a bind-mounted file; removed"
    else
        info "smoke test failed: no matching answer from 127.0.0.1:$port. Container log:"
        docker logs "$name" 2>&1 | tail -n 15 | sed 's/^/      /' >&2
        docker port "$name" 2>&1 | sed 's/^/      port: /' >&2
    fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    rm -rf "$dir"
    return $rc
}

ensure_test_image() {
    local busybox hash have
    if ! busybox=$(busybox_static_bin); then
        problem "no static busybox (Debian package busybox-static) to build $QD_TEST_IMAGE"
        return 1
    fi
    hash=$(test_image_hash "$busybox")
    have=$(docker image inspect --format "{{ index .Config.Labels \"$TEST_IMAGE_LABEL\" }}" \
        "$QD_TEST_IMAGE" 2>/dev/null || true)
    if [[ "$have" == "$hash" ]]; then
        info "$QD_TEST_IMAGE is up to date ($TEST_IMAGE_LABEL=$hash)"
    else
        info "building $QD_TEST_IMAGE from $busybox (${have:+old hash $have, }new hash $hash)"
        if ! build_test_image "$busybox" "$hash"; then
            problem "docker import of $QD_TEST_IMAGE failed"
            return 1
        fi
    fi
    if ! verify_test_image; then
        problem "a container of $QD_TEST_IMAGE did not serve on a port published on 127.0.0.1"
        return 1
    fi
}
