#!/usr/bin/env bash
# Builds the project's Dockerfile and checks the image the way an operator uses it. Run as root
# from the project root (`make container-check`; not part of CI, it takes minutes):
#
#   scripts/container-check.sh [WORKDIR] [PORT]
#
# It needs no container daemon and no registry: it installs Debian's docker.io and debootstrap,
# starts a private dockerd (own socket and data root, no bridge, no iptables changes), and when
# the Dockerfile's FROM image is missing, builds a stand-in for it (Debian bookworm with
# Python 3.11 from the apt mirror, made with debootstrap). The stand-in has Debian's Python in
# /usr/bin, not the official image's /usr/local build; the Dockerfile works on both.
#
# Checks, each printed as "ok: ..." (the first failure stops the script with "FAILED: ..."):
#  - the image builds; its size; a code change rebuilds without reinstalling dependencies;
#    the image holds one copy of the code (the installed package) and no wheel or source tree;
#  - the container runs on what a mounted config file says (a non-default port, not env vars),
#    /healthz answers 200 there and the HEALTHCHECK (`infranet healthcheck`) reports healthy;
#  - it runs as uid 10001, not root; `docker run IMAGE check-config` works (ENTRYPOINT);
#  - an environment variable that overrides the file is reported, naming the key;
#  - a data directory it cannot write stops it with one line and a non-zero exit;
#  - `docker stop` (SIGTERM) takes less than 5 s and the process exits 0;
#  - data survives re-creating the container on the same volume.
set -euo pipefail
W=${1:-/tmp/infranet-container-check}; PORT=${2:-18671}
NAME=infranet-check; VOLUME=infranet-check-data; IMAGE=infranet:check
mkdir -p "$W"
W=$(cd "$W" && pwd)
export DEBIAN_FRONTEND=noninteractive
command -v dockerd >/dev/null && command -v debootstrap >/dev/null \
  || apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends docker.io debootstrap >/dev/null
FROM_IMAGE=$(awk 'toupper($1)=="FROM"{print $2; exit}' Dockerfile)
MIRROR=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
[ -n "$MIRROR" ] || MIRROR=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)

fail() { echo "FAILED: $*"; exit 1; }
ok() { echo "ok: $*"; }

mkdir -p "$W/root" "$W/exec"
setsid /usr/sbin/dockerd --host "unix://$W/docker.sock" --data-root "$W/root" --exec-root "$W/exec" \
  --pidfile "$W/dockerd.pid" --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
  >"$W/dockerd.log" 2>&1 &
export DOCKER_HOST="unix://$W/docker.sock"
D=/usr/bin/docker
for _ in $(seq 1 30); do $D info >/dev/null 2>&1 && break; sleep 1; done
$D info >/dev/null 2>&1 || { tail -5 "$W/dockerd.log"; fail "dockerd did not start"; }
DPID=$(cat "$W/dockerd.pid")
cleanup() {
  $D rm -f "$NAME" >/dev/null 2>&1 || true
  $D volume rm "$VOLUME" >/dev/null 2>&1 || true
  kill -TERM "$DPID" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$DPID" 2>/dev/null || break; sleep 1; done
  umount "$W/exec/netns/default" 2>/dev/null || true
}
trap cleanup EXIT

if ! $D image inspect "$FROM_IMAGE" >/dev/null 2>&1; then
  echo "building a stand-in for $FROM_IMAGE with debootstrap (a few minutes the first time)"
  [ -d "$W/rootfs/usr" ] || debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,curl \
    bookworm "$W/rootfs" "$MIRROR" >"$W/debootstrap.log"
  rm -f "$W/rootfs/usr/lib/python3.11/EXTERNALLY-MANAGED"   # the official image has no PEP 668 marker
  # Trust the same certificate authorities as this machine, for pip inside the build.
  cp /usr/local/share/ca-certificates/*.crt "$W/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$W/rootfs" update-ca-certificates >/dev/null
  tar -C "$W/rootfs" -c . | $D import --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' --change 'CMD ["python3"]' - "$FROM_IMAGE" >/dev/null
fi

# Build from a copy of the project (what the Dockerfile may COPY), so that the second build can
# change a source file without touching the work tree.
rm -rf "$W/context"; mkdir -p "$W/context"
tar --exclude-vcs --exclude=./.venv --exclude=./data --exclude=./bench/.work --exclude='*/__pycache__' \
  -C . -cf - . | tar -C "$W/context" -xf -
start=$(date +%s)
DOCKER_BUILDKIT=0 $D build --network host -t "$IMAGE" "$W/context" >"$W/build.log" 2>&1 \
  || { tail -30 "$W/build.log"; fail "docker build"; }
size=$($D image inspect -f '{{.Size}}' "$IMAGE"); base=$($D image inspect -f '{{.Size}}' "$FROM_IMAGE")
ok "image built in $(( $(date +%s) - start )) s; size $(( size / 1000000 )) MB, of which $(( (size - base) / 1000000 )) MB above the base image $FROM_IMAGE ($(( base / 1000000 )) MB)"

echo "# changed by scripts/container-check.sh" >>"$W/context/infranet/__init__.py"
DOCKER_BUILDKIT=0 $D build --network host -t "$IMAGE" "$W/context" >"$W/rebuild.log" 2>&1 \
  || { tail -30 "$W/rebuild.log"; fail "docker build after a code change"; }
grep -A1 -- 'pip install --no-cache-dir -c' "$W/rebuild.log" | grep -q 'Using cache' \
  || fail "a code change reinstalled the dependencies (see $W/rebuild.log)"
ok "a code change rebuilds without reinstalling dependencies"

copies=$($D run --rm --entrypoint sh "$IMAGE" -c "find / -xdev -path '*/infranet/app.py' -o -name 'infranet*.whl' -o -path '*/src/infranet' 2>/dev/null; true")
[ "$(grep -c . <<<"$copies")" = 1 ] || fail "expected one copy of the package and no wheel, found: $copies"
ok "one copy of the code in the image: $copies"

# The operator's config file, mounted read-only; nothing about port or host in the environment.
mkdir -p "$W/conf"
cat >"$W/conf/config.toml" <<EOF
[http]
port = $PORT
public_base_url = "http://127.0.0.1:$PORT"

[service]
log_level = "INFO"
EOF
chmod 0755 "$W/conf"; chmod 0644 "$W/conf/config.toml"
CONF=(-v "$W/conf/config.toml:/config/config.toml:ro")

out=$($D run --rm --network host "${CONF[@]}" "$IMAGE" check-config 2>&1) || fail "check-config: $out"
grep -q "\"port\": $PORT" <<<"$out" || fail "check-config does not show the file's port: $out"
ok "'docker run IMAGE check-config' reads the mounted file (port $PORT)"
out=$($D run --rm --network host "${CONF[@]}" -e INFRANET_HTTP__PORT=1 "$IMAGE" check-config 2>&1) || true
grep -q 'config key http.port: \$INFRANET_HTTP__PORT overrides the value in /config/config.toml' <<<"$out" \
  || fail "an environment override of the file is not reported: $out"
ok "an environment variable over the file is reported, naming the key"

mkdir -p "$W/rootowned"; chown 0:0 "$W/rootowned"; chmod 0755 "$W/rootowned"
set +e
out=$($D run --rm --network host "${CONF[@]}" -v "$W/rootowned:/data" "$IMAGE" run 2>&1 >/dev/null)
rc=$?
set -e
lines=$(grep -c . <<<"$out")
[ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && grep -q 'not writable.*uid 10001' <<<"$out" \
  || fail "unwritable data directory: exit $rc, stderr: $out"
ok "a data directory uid 10001 cannot write: exit $rc, one line: $out"

run_container() {
  $D run -d --name "$NAME" --network host -v "$VOLUME:/data" "${CONF[@]}" \
    --health-interval=2s --health-start-period=60s --health-timeout=5s "$IMAGE" >/dev/null
  local up=0
  for _ in $(seq 1 60); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" = 200 ] && { up=1; break; }
    sleep 1
  done
  [ $up = 1 ] || { $D logs "$NAME" 2>&1 | tail -20; fail "no 200 from /healthz on port $PORT"; }
}

run_container
ok "/healthz answers 200 on the configured port $PORT: $(curl -s "http://127.0.0.1:$PORT/healthz")"
health=starting
for _ in $(seq 1 30); do
  health=$($D inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$NAME")
  [ "$health" = healthy ] && break; sleep 1
done
[ "$health" = healthy ] || fail "health status is '$health': $($D inspect -f '{{json .State.Health}}' "$NAME")"
ok "health status: $health ($($D inspect -f '{{(index .State.Health.Log 0).Output}}' "$NAME" | tr -d '\n'))"

user=$($D inspect -f '{{.Config.User}}' "$IMAGE"); uid=$($D exec "$NAME" id -u)
[ "$user" = 10001:10001 ] && [ "$uid" = 10001 ] || fail "user is '$user' (uid $uid)"
ok "runs as USER $user, not root: $($D exec "$NAME" id)"

$D logs "$NAME" 2>&1 | grep -q 'overrides the value' && fail "an override was reported with no variable set"
$D exec "$NAME" infranet org add "Container check organisation" --type COP >/dev/null 2>&1 \
  || fail "docker exec infranet org add"
$D exec "$NAME" infranet member add-admin 123456789 2>/dev/null | grep -q "123456789 is now an admin" \
  || fail "docker exec infranet member add-admin"
ok "'docker exec ... infranet org add' and 'member add-admin' work (as the README shows)"

s=$(date +%s.%N); $D stop "$NAME" >/dev/null; took=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$s}")
code=$($D inspect -f '{{.State.ExitCode}}' "$NAME")
awk "BEGIN{exit !($took < 5)}" || fail "docker stop took $took s"
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
ok "SIGTERM: stopped in $took s, exit code $code"

$D rm "$NAME" >/dev/null
run_container
$D exec "$NAME" infranet org list 2>/dev/null | grep -q "Container check organisation" \
  || fail "the organisation is gone after re-creating the container"
ok "data kept across re-creating the container on volume $VOLUME"
$D stop "$NAME" >/dev/null
echo "container check passed"
