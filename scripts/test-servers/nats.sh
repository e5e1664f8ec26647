#!/usr/bin/env bash
# Throw-away nats-server instances for tests: loopback only, JetStream on, data under DIR, and a
# watchdog that stops each server after --ttl seconds even if the test that started it died.
#
#   nats.sh start DIR PORT [options]   start one server (PORT 0: pick a free one); prints its port
#       --user U --pass P              user/password auth (default: bastion / bastion-test)
#       --token T | --nkey UPUBKEY     token or nkey auth instead
#       --no-auth                      no authentication at all
#       --name NAME                    server name (default: the DIR's base name)
#       --cluster-name C --cluster-port P [--routes HOST:PORT,...]
#       --no-jetstream                 core NATS only
#       --tls CERT KEY                 require TLS with this certificate (see certs)
#       --ttl SECONDS                  watchdog timeout (default 600)
#   nats.sh stop DIR                   SIGTERM, wait for exit, stop the watchdog
#   nats.sh kill DIR                   SIGKILL (a crash), the watchdog keeps watching
#   nats.sh restart DIR                start again with the same configuration and port
#   nats.sh cluster-start DIR [--ttl S] [--user U --pass P]
#                                      3 JetStream nodes (DIR/n1..n3, cluster "bastion-test"); prints
#                                      their client ports; returns once JetStream answers on each
#   nats.sh cluster-stop DIR
#   nats.sh port DIR                   the client port of the server in DIR
#   nats.sh certs DIR                  a test CA (ca.pem) and a server certificate for localhost and
#                                      127.0.0.1 (server.pem, server.key) signed by it
set -euo pipefail

die() { echo "nats.sh: $*" >&2; exit 2; }

need_server() {
    command -v nats-server >/dev/null 2>&1 || {
        echo "nats.sh: nats-server is not installed; install it with: apt-get install -y nats-server" >&2
        exit 3
    }
}

free_ports() { # COUNT
    # Below the kernel's ephemeral range (32768 and up): a port picked there can be taken by an
    # outgoing connection or port-0 listener of a parallel test before nats-server binds it, or
    # between a stop and a restart on the same port. Ports are handed out in turn under a lock
    # shared by every nats.sh on the machine, so two servers starting at once never get the same
    # one (a free port is only free until somebody binds it).
    python3 - "$1" <<'PY'
import fcntl, os, socket, sys
LOW, HIGH = 25000, 32768
state = os.path.join(os.environ.get("TMPDIR", "/tmp"), "bastion-nats-ports")
with open(state + ".lock", "a+") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        with open(state) as f:
            nxt = int(f.read().strip() or LOW)
    except (OSError, ValueError):
        nxt = LOW + os.getpid() % (HIGH - LOW)
    ports = []
    for _ in range(HIGH - LOW):
        if len(ports) == int(sys.argv[1]):
            break
        candidate, nxt = nxt, (LOW if nxt + 1 >= HIGH else nxt + 1)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        ports.append(candidate)
    with open(state, "w") as f:
        f.write(str(nxt))
print(" ".join(str(p) for p in ports))
PY
}

running() { [ -f "$1/nats.pid" ] && kill -0 "$(cat "$1/nats.pid")" 2>/dev/null; }

wait_ready() { # DIR
    local dir=$1 port http i
    port=$(cat "$dir/port"); http=$(cat "$dir/http_port")
    for i in $(seq 1 150); do
        running "$dir" || { tail -20 "$dir/nats.log" >&2; die "server in $dir exited"; }
        if [ -f "$dir/jetstream" ]; then
            curl -fsS "http://127.0.0.1:$http/healthz" >/dev/null 2>&1 && return 0
        else
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        fi
        sleep 0.2
    done
    tail -20 "$dir/nats.log" >&2
    die "server in $dir not ready after 30s"
}

launch() { # DIR
    local dir=$1
    nohup nats-server -c "$dir/nats.conf" >>"$dir/nats.log" 2>&1 </dev/null &
    echo $! >"$dir/nats.pid"
}

start_watchdog() { # DIR TTL
    local dir=$1 ttl=$2
    nohup bash -c '
        # stop kills this shell: take the sleep along.
        trap "kill \$s 2>/dev/null; exit 0" TERM
        sleep "$1" & s=$!
        wait $s
        [ -f "$2/nats.pid" ] && kill -TERM "$(cat "$2/nats.pid")" 2>/dev/null
        sleep 5
        [ -f "$2/nats.pid" ] && kill -KILL "$(cat "$2/nats.pid")" 2>/dev/null
        true' _ "$ttl" "$dir" >/dev/null 2>&1 </dev/null &
    echo $! >"$dir/watchdog.pid"
}

cmd_start() {
    need_server
    [ $# -ge 2 ] || die "usage: nats.sh start DIR PORT [options]"
    local dir=$1 port=$2; shift 2
    local user=bastion pass=bastion-test token="" nkey="" auth=user name="" cname="" cport="" routes="" js=1 ttl=600
    local tls_cert="" tls_key=""
    while [ $# -gt 0 ]; do
        case $1 in
            --user) user=$2; shift ;;
            --pass) pass=$2; shift ;;
            --token) token=$2; auth=token; shift ;;
            --nkey) nkey=$2; auth=nkey; shift ;;
            --no-auth) auth=none ;;
            --name) name=$2; shift ;;
            --cluster-name) cname=$2; shift ;;
            --cluster-port) cport=$2; shift ;;
            --routes) routes=$2; shift ;;
            --no-jetstream) js=0 ;;
            --tls) tls_cert=$2; tls_key=$3; shift 2 ;;
            --ttl) ttl=$2; shift ;;
            *) die "unknown option $1" ;;
        esac
        shift
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    running "$dir" && die "a server already runs in $dir"
    [ -n "$name" ] || name=$(basename "$dir")
    if [ "$port" = 0 ]; then port=$(free_ports 1); fi
    local http; http=$(free_ports 1)
    {
        echo "listen: 127.0.0.1:$port"
        echo "http: 127.0.0.1:$http"
        echo "server_name: \"$name\""
        if [ "$js" = 1 ]; then
            echo "jetstream { store_dir: \"$dir/data\", max_memory_store: 256MB, max_file_store: 2GB }"
        fi
        case $auth in
            user) echo "authorization { user: \"$user\", password: \"$pass\" }" ;;
            token) echo "authorization { token: \"$token\" }" ;;
            nkey) echo "authorization { users: [ { nkey: \"$nkey\" } ] }" ;;
            none) ;;
        esac
        if [ -n "$tls_cert" ]; then
            echo "tls { cert_file: \"$tls_cert\", key_file: \"$tls_key\", timeout: 5 }"
        fi
        if [ -n "$cname" ]; then
            echo "cluster {"
            echo "  name: \"$cname\""
            echo "  listen: 127.0.0.1:$cport"
            if [ -n "$routes" ]; then
                echo "  routes: ["
                local r
                for r in ${routes//,/ }; do echo "    \"nats-route://$r\""; done
                echo "  ]"
            fi
            echo "}"
        fi
    } >"$dir/nats.conf"
    echo "$port" >"$dir/port"
    echo "$http" >"$dir/http_port"
    rm -f "$dir/jetstream"; [ "$js" = 1 ] && touch "$dir/jetstream"
    launch "$dir"
    start_watchdog "$dir" "$ttl"
    # A cluster node's JetStream is healthy only once a meta leader exists: cluster-start waits.
    if [ -z "$cname" ]; then wait_ready "$dir"; fi
    echo "$port"
}

cmd_stop() {
    local dir=$1 pid i
    if [ -f "$dir/nats.pid" ]; then
        pid=$(cat "$dir/nats.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/nats.pid"
    fi
    if [ -f "$dir/watchdog.pid" ]; then
        kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true
        rm -f "$dir/watchdog.pid"
    fi
}

cmd_kill() {
    local dir=$1 pid i
    [ -f "$dir/nats.pid" ] || die "no server in $dir"
    pid=$(cat "$dir/nats.pid")
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}

cmd_restart() {
    need_server
    local dir=$1
    running "$dir" && die "a server already runs in $dir"
    launch "$dir"
    grep -q '^cluster' "$dir/nats.conf" || wait_ready "$dir"
    cat "$dir/port"
}

cmd_cluster_start() {
    need_server
    local dir=$1; shift
    local extra=("$@")
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    read -r c1 c2 c3 p1 p2 p3 <<<"$(free_ports 6)"
    local cports=($c1 $c2 $c3) ports=($p1 $p2 $p3) i
    for i in 0 1 2; do
        local routes="" j
        for j in 0 1 2; do [ $j = $i ] || routes="$routes${routes:+,}127.0.0.1:${cports[$j]}"; done
        cmd_start "$dir/n$((i + 1))" "${ports[$i]}" --name "n$((i + 1))" --cluster-name bastion-test \
            --cluster-port "${cports[$i]}" --routes "$routes" "${extra[@]}" >/dev/null
    done
    for i in 1 2 3; do wait_ready "$dir/n$i"; done
    echo "$p1 $p2 $p3"
}

cmd_certs() {
    local dir=$1
    mkdir -p "$dir"
    (
        cd "$dir"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
            -days 2 -subj /CN=bastion-test-ca 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
            -subj /CN=localhost 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
            -extfile server.ext 2>/dev/null
        rm -f server.csr server.ext ca.srl
    )
}

cmd_cluster_stop() {
    local dir=$1 i
    for i in 1 2 3; do [ -d "$dir/n$i" ] && cmd_stop "$dir/n$i"; done
    true
}

[ $# -ge 2 ] || die "usage: nats.sh start|stop|kill|restart|cluster-start|cluster-stop|port DIR ..."
command=$1; shift
case $command in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$1" ;;
    kill) cmd_kill "$1" ;;
    restart) cmd_restart "$1" ;;
    cluster-start) cmd_cluster_start "$@" ;;
    cluster-stop) cmd_cluster_stop "$1" ;;
    port) cat "$1/port" ;;
    certs) cmd_certs "$1" ;;
    *) die "unknown command $command" ;;
esac
