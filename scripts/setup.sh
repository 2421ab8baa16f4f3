#!/usr/bin/env bash
# Prepare this machine for GhostPanel: system packages, Podman settings, the virtual
# environment and the demo image; with --engine, also a running engine socket.
#
#   scripts/setup.sh            what `make test` needs
#   scripts/setup.sh --engine   plus an Engine API socket that answers (for `make run`)
#
# Run as root on Debian or Ubuntu. Idempotent: a step already done prints "ok".
# Details of every command go to $SETUP_LOG; its tail is shown when a step fails.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.ghostpanel-install.sha256"
CONF=/etc/containers/containers.conf
IMAGE=localhost/busybox:latest
SYSTEM_SOCKET=/run/podman/podman.sock
ENGINE_LOG=/var/log/ghostpanel-podman.log
ENGINE_PIDFILE=/run/ghostpanel-podman.pid
SETUP_LOG=${SETUP_LOG:-/tmp/ghostpanel-setup.log}

want_engine=0
for arg in "$@"; do
    case "$arg" in
        --engine) want_engine=1 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "setup: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

: >"$SETUP_LOG"
current_step=""
step() { current_step=$1; printf 'setup: %-16s ' "$1"; }
say() { echo "$*"; }
on_error() {
    echo "FAILED"
    echo "setup: step '$current_step' failed; last lines of $SETUP_LOG:" >&2
    tail -n 25 "$SETUP_LOG" >&2
}
trap on_error ERR
run() { echo "+ $*" >>"$SETUP_LOG"; "$@" >>"$SETUP_LOG" 2>&1; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (Podman's rootful engines and apt-get need it)" >&2
    exit 1
fi

# --- system packages ---------------------------------------------------------------
step packages
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
missing=()
# chromium: the browser tests drive Debian's build through Playwright (no browser download).
# docker-registry: the pull tests start private registries on free loopback ports.
# postgresql: the server the team tests start (a private cluster each session, never the
# system one). Node.js runs JupyterHub's configurable-http-proxy; some images carry a
# NodeSource build that bundles npm, so a working `npm` counts whatever package gave it.
for pkg in podman runc busybox-static btrfs-progs curl chromium docker-registry postgresql; do
    installed "$pkg" || missing+=("$pkg")
done
command -v python3 >/dev/null || missing+=(python3)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
    say ok
else
    export DEBIAN_FRONTEND=noninteractive
    run apt-get update -q
    run apt-get install -y -q "${missing[@]}"
    say "installed ${missing[*]}"
fi

# --- docker-registry: no system-wide registry -----------------------------------------
# The package's postinst enables a registry on port 5000 of every interface, at boot
# (systemd unit and SysV links) and at once (unless policy-rc.d forbids it). The tests
# start their own, on loopback: when this run installed the package, its service is
# stopped and disabled; one that was there before is the machine owner's, left alone.
step registry-service
registry_running() {
    if [ -d /run/systemd/system ]; then
        systemctl is-active --quiet docker-registry.service
    else
        /etc/init.d/docker-registry status >/dev/null 2>&1
    fi
}
if [[ " ${missing[*]} " != *" docker-registry "* ]]; then
    if registry_running; then
        say "ok (a system-wide docker-registry runs; the tests neither use nor need it)"
    else
        say ok
    fi
else
    if [ -d /run/systemd/system ]; then
        run systemctl disable --now docker-registry.service
    else
        if registry_running; then
            run /etc/init.d/docker-registry stop
        fi
        # The unit's link too, that a later boot with systemd would follow (systemctl
        # edits the links offline; deb-systemd-helper refuses to run outside dpkg).
        if command -v systemctl >/dev/null; then
            run systemctl disable docker-registry.service
        else
            run rm -f /etc/systemd/system/multi-user.target.wants/docker-registry.service
        fi
    fi
    run update-rc.d docker-registry disable
    if registry_running; then
        echo "FAILED"
        echo "setup: the system-wide docker-registry still runs after being stopped" >&2
        exit 1
    fi
    say "stopped and disabled the system-wide service"
fi

# --- a docker client, and no docker daemon --------------------------------------------
# The agent's passthrough tests drive it with the real `docker` CLI. Where none is on the
# PATH, Debian's docker.io provides one, but it also ships dockerd (and pulls in
# containerd), which its scripts enable and start, taking /run/docker.sock: the install
# runs under a policy-rc.d that lets no service start, then the daemon's units are
# disabled, so that Podman stays the only engine here and its socket is left alone.
step docker-client
# /proc, not pgrep: procps may be missing, and then pgrep would say "not running".
dockerd_running() {
    local comm
    for comm in /proc/[0-9]*/comm; do
        [ "$(cat "$comm" 2>/dev/null)" = dockerd ] && return 0
    done
    return 1
}
if command -v docker >/dev/null; then
    say "ok ($(command -v docker))"
else
    export DEBIAN_FRONTEND=noninteractive
    had_containerd=0
    installed containerd && had_containerd=1
    policy=/usr/sbin/policy-rc.d
    our_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# scripts/setup.sh: no service starts while docker.io installs\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        our_policy=1
    fi
    status=0
    { run apt-get update -q && run apt-get install -y -q --no-install-recommends docker.io; } \
        || status=$?
    [ "$our_policy" -eq 0 ] || rm -f "$policy"
    [ "$status" -eq 0 ]
    units=(docker.socket docker.service)
    [ "$had_containerd" -eq 1 ] || units+=(containerd.service)
    for unit in "${units[@]}"; do
        if [ -d /run/systemd/system ]; then
            run systemctl disable --now "$unit"
        elif command -v systemctl >/dev/null; then
            run systemctl disable "$unit"  # the links a later boot with systemd would follow
        else
            run rm -f "/etc/systemd/system/sockets.target.wants/$unit" \
                "/etc/systemd/system/multi-user.target.wants/$unit"
        fi
    done
    run update-rc.d docker disable
    if dockerd_running; then
        # A policy-rc.d of the machine's own that allowed the start: stop it again.
        if [ -d /run/systemd/system ]; then
            run systemctl stop docker.socket docker.service
        else
            run /etc/init.d/docker stop
        fi
    fi
    if dockerd_running; then
        echo "FAILED"
        echo "setup: dockerd still runs after docker.io was installed and its service stopped" >&2
        exit 1
    fi
    say "installed docker.io for its client ($(command -v docker)); its daemon is disabled"
fi

# --- Podman settings: runc, no default ulimits -------------------------------------
step containers.conf
if python3 - "$CONF" <<'PY'
import sys, tomllib
try:
    with open(sys.argv[1], "rb") as f:
        conf = tomllib.load(f)
except (FileNotFoundError, tomllib.TOMLDecodeError):
    sys.exit(1)
ok = conf.get("engine", {}).get("runtime") == "runc" and conf.get("containers", {}).get("default_ulimits") == []
sys.exit(0 if ok else 1)
PY
then
    say ok
else
    backup=""
    if [ -s "$CONF" ]; then
        backup="$CONF.ghostpanel-backup.$(date +%Y%m%d%H%M%S)"
        cp -p "$CONF" "$backup"
    fi
    mkdir -p "$(dirname "$CONF")"
    # Set the two keys in place, keeping every other setting; the file must still parse.
    run python3 - "$CONF" <<'PY'
import sys, tomllib
path = sys.argv[1]
wanted = {"containers": ("default_ulimits", "[]"), "engine": ("runtime", '"runc"')}
try:
    lines = open(path, encoding="utf-8").read().splitlines()
except FileNotFoundError:
    lines = []
out, table, skipping, done = [], None, 0, set()
for line in lines:
    stripped = line.strip()
    if skipping:  # the rest of a multi-line value being replaced
        skipping += stripped.count("[") - stripped.count("]")
        continue
    if stripped.startswith("[") and not stripped.startswith("[["):
        table = stripped.strip("[] ")
        out.append(line)
        if table in wanted and table not in done:
            key, value = wanted[table]
            out.append(f"{key} = {value}")
            done.add(table)
        continue
    key = stripped.split("=", 1)[0].strip()
    if table in wanted and "=" in stripped and key == wanted[table][0]:
        value = stripped.split("=", 1)[1].split("#", 1)[0]
        skipping = max(value.count("[") - value.count("]"), 0)
        continue
    out.append(line)
for table, (key, value) in wanted.items():
    if table not in done:
        out += ["", f"[{table}]", f"{key} = {value}"]
text = "\n".join(out).lstrip("\n") + "\n"
conf = tomllib.loads(text)
assert conf["engine"]["runtime"] == "runc" and conf["containers"]["default_ulimits"] == []
open(path, "w", encoding="utf-8").write(text)
PY
    say "written${backup:+ (backup: $backup)}"
fi

# --- virtual environment and the project ---------------------------------------------
step venv
if [ ! -x "$VENV/bin/python" ]; then
    if ! run python3 -m venv "$VENV"; then
        rm -rf "$VENV"
        export DEBIAN_FRONTEND=noninteractive
        run apt-get update -q
        run apt-get install -y -q python3-venv
        run python3 -m venv "$VENV"
    fi
    created=1
else
    created=0
fi
digest=$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)
if [ "$created" -eq 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$digest" ] \
        && [ -x "$VENV/bin/ghostpanel" ]; then
    say ok
else
    run "$VENV/bin/python" -m pip install -q -e "$ROOT[widgets,hub,runbooks,test,bench]"
    echo "$digest" >"$STAMP"
    say "installed .[widgets,hub,runbooks,test,bench]"
fi

# --- the demo image in the system's Podman storage -------------------------------------
step hub-proxy
# JupyterHub's proxy (`ghostpanel hub`, tests/hub_process.py) comes from the npm registry.
if command -v configurable-http-proxy >/dev/null; then
    say ok
else
    run npm install -g --no-fund --no-audit configurable-http-proxy
    command -v configurable-http-proxy >/dev/null
    say "installed configurable-http-proxy $(configurable-http-proxy --version)"
fi

step busybox-image
if podman image exists "$IMAGE" 2>>"$SETUP_LOG"; then
    say ok
else
    workdir=$(mktemp -d)
    archive=$("$VENV/bin/python" "$ROOT/ghostpanel_kernel/_busybox.py" archive "$workdir/busybox.tar")
    run podman import --quiet --change 'CMD ["sh"]' "$archive" "$IMAGE"
    rm -rf "$workdir"
    say "imported $IMAGE"
fi

# --- an engine that answers (make run) ----------------------------------------------
if [ "$want_engine" -eq 1 ]; then
    step engine
    answers() { [ -S "$1" ] && curl -fsS --max-time 3 --unix-socket "$1" http://d/_ping >/dev/null 2>&1; }
    found=""
    for sock in "$SYSTEM_SOCKET" /var/run/docker.sock; do
        if answers "$sock"; then found=$sock; break; fi
    done
    if [ -n "$found" ]; then
        say "ok ($found)"
    else
        if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm)" = systemd ]; then
            run systemctl start podman.socket
            how="systemctl start podman.socket"
        else
            pid=$(cat "$ENGINE_PIDFILE" 2>/dev/null || true)
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
                    && grep -qa 'system.service' "/proc/$pid/cmdline" 2>/dev/null; then
                how="already starting (pid $pid)"
            else
                mkdir -p "$(dirname "$SYSTEM_SOCKET")"
                # Its own session: it outlives this script and ignores the terminal's Ctrl-C.
                setsid nohup podman system service --time=0 "unix://$SYSTEM_SOCKET" \
                    >>"$ENGINE_LOG" 2>&1 </dev/null &
                echo $! >"$ENGINE_PIDFILE"
                how="started podman system service (pid $!, log $ENGINE_LOG)"
            fi
        fi
        for _ in $(seq 100); do
            answers "$SYSTEM_SOCKET" && break
            sleep 0.1
        done
        if ! answers "$SYSTEM_SOCKET"; then
            echo "FAILED"
            echo "setup: no answer on $SYSTEM_SOCKET after 10 s; last lines of $ENGINE_LOG:" >&2
            tail -n 20 "$ENGINE_LOG" >&2 || true
            exit 1
        fi
        say "$how: $SYSTEM_SOCKET"
    fi
fi
