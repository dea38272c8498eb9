#!/usr/bin/env bash
# The network-namespace harness of netd's integration tests and of the network benchmark.
#
#   netns_harness.sh up   ID DIR NET_PROBE   build the world below; write DIR/harness.env
#   netns_harness.sh down ID DIR             stop its servers, delete its namespaces and
#                                            /etc/netns/ID-* folders (safe to repeat)
#   netns_harness.sh sweep                   `down` for every sbxt-PID-* left by a dead PID
#
# Needs root, iproute2, dnsmasq, nginx, openssl. ID is short and unique, e.g. sbxt-$$.
#
#   ID-inet   "the internet": veth 192.0.2.1/24 + 2001:db8:1::1/64 toward ID-host, and on lo:
#             198.51.100.53   dnsmasq (query log: DIR/dnsmasq.log)
#             198.51.100.80, [2001:db8::80]   nginx :80, :443 (TLS, test CA DIR/tls/ca.crt), :8080
#             198.51.100.80:5201  iperf3 server, when iperf3 is installed (tests/bench/net_bench.sh)
#             198.51.100.81   nginx :80, in no DNS record (the "raw IP" destination)
#             198.51.100.91-93  nginx :80 (a.sub.test, b.sub.test, c.sub.test)
#             198.51.100.7    UDP echo on :7007 (udp.test); the kernel answers ping everywhere
#             10.99.0.80      nginx :80, the "intranet" (a private address)
#   ID-host   where netd runs, like the user's machine: veth 192.0.2.2/24, 2001:db8:1::2/64,
#             default routes to ID-inet; /etc/netns/ID-host/resolv.conf -> 198.51.100.53;
#             "host loopback" services on 127.0.0.1:18080 and 127.0.0.1:18081, and a service
#             on the host's own LAN address 192.0.2.2:18082 (net_probe)
#   ID-guest  tap0 10.0.2.15/24 via 10.0.2.2, fec0::15/64 via fec0::2, MTU 65520;
#             /etc/netns/ID-guest/resolv.conf -> 10.0.2.3 (netd). Nothing is attached to
#             tap0 until a tap_relay runs in ID-guest and connects to netd's socket:
#               ip netns exec ID-host  sbx _netd --config netd.json &
#               ip netns exec ID-guest tap_relay --tap tap0 --socket <netd socket> &
#
# DNS names served by dnsmasq (A, AAAA):
#   www.allowed.test  198.51.100.80, 2001:db8::80     denied.test   198.51.100.80, 2001:db8::80
#   intranet.test     10.99.0.80                      udp.test      198.51.100.7
#   a.sub.test, b.sub.test, c.sub.test: 198.51.100.91, .92, .93
#   bench.test        198.51.100.80 (the network benchmark's destination)
set -euo pipefail

die() { echo "netns_harness: $*" >&2; exit 1; }

cmd=${1:-}
ns_exec() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

down() {
    local id=$1 dir=${2:-}
    if [[ -n $dir && -f $dir/pids ]]; then
        while read -r pid; do
            [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
        done <"$dir/pids"
        sleep 0.2
        while read -r pid; do
            [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
        done <"$dir/pids"
        rm -f "$dir/pids"
    fi
    for n in inet host guest; do
        local ns="$id-$n"
        if ip netns list | grep -qw -- "$ns"; then
            # Whatever still runs in the namespace (a netd or relay a test left) goes with it.
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                kill -9 "$pid" 2>/dev/null || true
            done
            ip netns del "$ns" 2>/dev/null || true
        fi
        rm -rf "/etc/netns/$ns"
    done
}

up() {
    local id=$1 dir=$2 probe=$3
    [[ $(id -u) -eq 0 ]] || die "needs root"
    [[ ${#id} -le 20 ]] || die "ID $id is too long"
    command -v dnsmasq >/dev/null || die "dnsmasq is not installed (dnsmasq-base)"
    command -v nginx >/dev/null || die "nginx is not installed (nginx-light)"
    [[ -x $probe ]] || die "net_probe $probe is not executable"
    down "$id" "$dir"
    mkdir -p "$dir"
    chmod 755 "$dir"
    : >"$dir/pids"
    local inet="$id-inet" host="$id-host" guest="$id-guest"
    ip netns add "$inet"
    ip netns add "$host"
    ip netns add "$guest"
    for ns in "$inet" "$host" "$guest"; do
        ns_exec "$ns" ip link set lo up
    done

    # inet <-> host
    ip link add name wan netns "$inet" type veth peer name wan netns "$host"
    ns_exec "$inet" ip addr add 192.0.2.1/24 dev wan
    ns_exec "$inet" ip addr add 2001:db8:1::1/64 dev wan nodad
    ns_exec "$inet" ip link set wan mtu 65520 up
    ns_exec "$host" ip addr add 192.0.2.2/24 dev wan
    ns_exec "$host" ip addr add 2001:db8:1::2/64 dev wan nodad
    ns_exec "$host" ip link set wan mtu 65520 up
    ns_exec "$host" ip route add default via 192.0.2.1
    # Unprivileged ICMP sockets, as systemd's sysctl defaults give a Debian host (a new
    # namespace starts with the kernel's "1 0": none); netd's ping needs them.
    ns_exec "$host" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
    ns_exec "$host" ip -6 route add default via 2001:db8:1::1
    for a in 198.51.100.7/32 198.51.100.53/32 198.51.100.80/32 198.51.100.81/32 198.51.100.91/32 \
        198.51.100.92/32 198.51.100.93/32 10.99.0.80/32; do
        ns_exec "$inet" ip addr add "$a" dev lo
    done
    ns_exec "$inet" ip addr add 2001:db8::80/128 dev lo nodad
    ns_exec "$inet" ip addr add 2001:db8::53/128 dev lo nodad

    # guest: the tap netd's relay will attach to
    ns_exec "$guest" ip tuntap add dev tap0 mode tap
    ns_exec "$guest" ip link set tap0 mtu 65520 up
    ns_exec "$guest" ip addr add 10.0.2.15/24 dev tap0
    ns_exec "$guest" ip addr add fec0::15/64 dev tap0 nodad
    ns_exec "$guest" ip route add default via 10.0.2.2 dev tap0
    ns_exec "$guest" ip -6 route add default via fec0::2 dev tap0
    ns_exec "$guest" sysctl -qw net.ipv6.conf.tap0.accept_ra=0

    mkdir -p "/etc/netns/$host" "/etc/netns/$guest"
    echo "nameserver 198.51.100.53" >"/etc/netns/$host/resolv.conf"
    echo "nameserver 10.0.2.3" >"/etc/netns/$guest/resolv.conf"

    # TLS: a test CA and a server certificate for www.allowed.test
    mkdir -p "$dir/tls"
    (
        cd "$dir/tls"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj /CN=sbx-netd-test-ca -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj /CN=www.allowed.test -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=DNS:www.allowed.test\n' >san.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
            -extfile san.ext -out server.crt 2>/dev/null
    )

    # nginx
    mkdir -p "$dir/www" "$dir/nginx/tmp"
    echo "sbx-netd-test-body" >"$dir/www/index.html"
    cat >"$dir/nginx/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
error_log $dir/nginx/error.log;
pid $dir/nginx/nginx.pid;
events { worker_connections 256; }
http {
    access_log $dir/nginx/access.log;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    types { text/html html; application/octet-stream bin; }
    sendfile on;
    server {
        listen 198.51.100.80:80;
        listen [2001:db8::80]:80;
        listen 198.51.100.80:8080;
        listen 198.51.100.81:80;
        listen 198.51.100.91:80;
        listen 198.51.100.92:80;
        listen 198.51.100.93:80;
        listen 10.99.0.80:80;
        listen 198.51.100.80:443 ssl;
        listen [2001:db8::80]:443 ssl;
        ssl_certificate $dir/tls/server.crt;
        ssl_certificate_key $dir/tls/server.key;
        root $dir/www;
    }
}
EOF
    ns_exec "$inet" nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" >"$dir/nginx/stdout.log" 2>&1 &
    echo $! >>"$dir/pids"

    # dnsmasq: the only DNS server of the world, with a query log
    ns_exec "$inet" dnsmasq --no-daemon --no-resolv --no-hosts --log-queries \
        --log-facility="$dir/dnsmasq.log" --pid-file= --user=root --group=root \
        --listen-address=198.51.100.53 --bind-interfaces --port=53 \
        --host-record=www.allowed.test,198.51.100.80,2001:db8::80 \
        --host-record=denied.test,198.51.100.80,2001:db8::80 \
        --host-record=intranet.test,10.99.0.80 \
        --host-record=a.sub.test,198.51.100.91 \
        --host-record=b.sub.test,198.51.100.92 \
        --host-record=c.sub.test,198.51.100.93 \
        --host-record=udp.test,198.51.100.7 \
        --host-record=bench.test,198.51.100.80 \
        >"$dir/dnsmasq.stdout" 2>&1 &
    echo $! >>"$dir/pids"

    # The benchmark's throughput server (optional: the tests do not need it)
    if command -v iperf3 >/dev/null; then
        ns_exec "$inet" iperf3 --server --bind 198.51.100.80 --port 5201 >"$dir/iperf3.log" 2>&1 &
        echo $! >>"$dir/pids"
    fi

    # UDP echo in the internet; "host loopback" services in the host namespace
    ns_exec "$inet" "$probe" udp-echo 198.51.100.7 7007 >/dev/null 2>&1 &
    echo $! >>"$dir/pids"
    ns_exec "$host" "$probe" tcp-serve 127.0.0.1 18080 >/dev/null 2>&1 &
    echo $! >>"$dir/pids"
    ns_exec "$host" "$probe" tcp-serve 127.0.0.1 18081 >/dev/null 2>&1 &
    echo $! >>"$dir/pids"
    ns_exec "$host" "$probe" tcp-serve 192.0.2.2 18082 >/dev/null 2>&1 &
    echo $! >>"$dir/pids"

    # Wait (bounded) until the servers answer from the host namespace.
    local ok=0
    for _ in $(seq 1 50); do
        if ns_exec "$host" "$probe" tcp 198.51.100.80 443 200 >/dev/null 2>&1 &&
            ns_exec "$host" "$probe" tcp 127.0.0.1 18081 200 >/dev/null 2>&1 &&
            ns_exec "$host" getent ahostsv4 www.allowed.test >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [[ $ok -eq 1 ]] || { cat "$dir/nginx/error.log" "$dir/dnsmasq.stdout" >&2 2>/dev/null || true; die "servers did not come up"; }

    cat >"$dir/harness.env" <<EOF
HARNESS_ID=$id
INET_NS=$inet
HOST_NS=$host
GUEST_NS=$guest
HARNESS_DIR=$dir
CA_CERT=$dir/tls/ca.crt
DNSMASQ_LOG=$dir/dnsmasq.log
WEB4=198.51.100.80
WEB6=2001:db8::80
DNS_SERVER=198.51.100.53
EOF
    echo "netns_harness: up ($inet, $host, $guest; files in $dir)"
}

sweep() {
    for ns in $(ip netns list | awk '{print $1}' | grep -E '^sbxt-[0-9]+-(inet|host|guest)$' || true); do
        local pid=${ns#sbxt-}
        pid=${pid%%-*}
        if ! kill -0 "$pid" 2>/dev/null; then
            down "sbxt-$pid"
        fi
    done
}

case $cmd in
    up) [[ $# -eq 4 ]] || die "usage: $0 up ID DIR NET_PROBE"; up "$2" "$3" "$4" ;;
    down) [[ $# -ge 2 ]] || die "usage: $0 down ID [DIR]"; down "$2" "${3:-}" ;;
    sweep) sweep ;;
    *) die "usage: $0 up ID DIR NET_PROBE | down ID [DIR] | sweep" ;;
esac
