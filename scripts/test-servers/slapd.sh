#!/usr/bin/env bash
# A throw-away OpenLDAP server for tests, on loopback only.
#
#   slapd.sh certs DIR                              writes a test PKI into DIR (see below)
#   slapd.sh start DIR PORT [TLS_CERT TLS_KEY TLS_CA]
#   slapd.sh stop DIR
#
# `start` creates DIR (which must be empty or missing) with slapd.conf, the database and
# slapd.log, loads the seed below, starts slapd on ldap://127.0.0.1:PORT and, when the three TLS
# files are given, on ldaps://127.0.0.1:PORT+1 with StartTLS also offered on PORT. It waits
# until the server answers and prints slapd's pid (and nothing else) on stdout.
# `stop` stops the server started in DIR and waits until it is gone; DIR is left for inspection.
# Needs Debian's slapd and ldap-utils (`apt-get install -y slapd ldap-utils`).
#
# Seed (suffix dc=bastion,dc=test):
#   cn=admin,dc=bastion,dc=test            root DN, password admin-pass (no entry)
#   cn=reader,dc=bastion,dc=test           service account, password reader-pass: reads
#                                          everything except passwords
#   ou=people,dc=bastion,dc=test           inetOrgPerson users:
#     uid=alice  password alice-pass  cn "Alice Example"  mail alice@bastion.test
#     uid=bob    password bob-pass    cn "Bob Example"    mail bob@bastion.test
#     uid=carol  password carol-pass  cn "Carol Example"  mail carol@bastion.test
#   ou=groups,dc=bastion,dc=test           groupOfNames, member = user DNs:
#     cn=operators  alice
#     cn=admins     carol
#     cn=viewers    alice, bob
#   Users carry memberOf (memberof overlay): alice → operators, viewers; bob → viewers;
#   carol → admins.
# Access: anonymous may bind and read the root DSE only; bound users and the reader read
# everything except userPassword.
#
# `certs DIR` writes ca.pem/ca.key (test CA), server.pem/server.key (issued by it, for
# IP:127.0.0.1 and DNS:localhost), localhost.pem/localhost.key (issued by it, DNS:localhost only:
# a client that connects to 127.0.0.1 must refuse it), client.pem/client.key (issued by it,
# CN=bastion-client) and other-ca.pem (an unrelated CA, for negative tests). Keys are P-256,
# valid for 2 days.
set -euo pipefail

SUFFIX="dc=bastion,dc=test"
ROOT_DN="cn=admin,$SUFFIX"
ROOT_PW="admin-pass"

die() { echo "slapd.sh: $*" >&2; exit 1; }

need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
            die "$tool not found: install Debian's slapd and ldap-utils (apt-get install -y slapd ldap-utils)"
    done
}

tool() { if command -v "$1" >/dev/null 2>&1; then command -v "$1"; else echo "/usr/sbin/$1"; fi; }

cmd_certs() {
    local dir=$1
    command -v openssl >/dev/null || die "openssl not found"
    mkdir -p "$dir"
    cd "$dir"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=Bastion Test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=Unrelated Test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    issue() { # name subject extensions
        openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
        printf '%b' "$3" > "$1.ext"
        openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out "$1.pem" -extfile "$1.ext" 2>/dev/null
        rm -f "$1.csr" "$1.ext"
    }
    issue server "/CN=127.0.0.1" "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    issue localhost "/CN=localhost" "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    issue client "/CN=bastion-client" "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    rm -f ca.srl
}

cmd_start() {
    local dir=$1 port=$2 cert=${3:-} key=${4:-} ca=${5:-}
    need slapd slapadd slappasswd ldapsearch ldapadd
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
    if [ -n "$cert" ] && { [ -z "$key" ] || [ -z "$ca" ]; }; then die "TLS needs TLS_CERT TLS_KEY TLS_CA"; fi
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then die "$dir is not empty"; fi
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)

    local urls="ldap://127.0.0.1:$port/"
    local tls_conf=""
    if [ -n "$cert" ]; then
        for f in "$cert" "$key" "$ca"; do [ -r "$f" ] || die "cannot read $f"; done
        # slapd may run without access to the caller's directories: use copies inside DIR.
        cp "$cert" "$dir/server.pem"; cp "$key" "$dir/server.key"; cp "$ca" "$dir/ca.pem"
        chmod 600 "$dir/server.key"
        tls_conf="TLSCertificateFile $dir/server.pem
TLSCertificateKeyFile $dir/server.key
TLSCACertificateFile $dir/ca.pem
TLSProtocolMin 3.3"
        urls="$urls ldaps://127.0.0.1:$((port + 1))/"
    fi

    cat > "$dir/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
argsfile $dir/slapd.args
sizelimit 500
$tls_conf

database mdb
suffix "$SUFFIX"
rootdn "$ROOT_DN"
rootpw $(  "$(tool slappasswd)" -h '{SSHA}' -s "$ROOT_PW")
directory $dir/data
maxsize 16777216
index objectClass,uid,member eq

overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf

access to dn.base="" by * read
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by dn.exact="cn=reader,$SUFFIX" read
    by users read
    by * none
CONF

    hash() { "$(tool slappasswd)" -h '{SSHA}' -s "$1"; }
    cat > "$dir/seed.ldif" <<LDIF
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
dc: bastion
o: Bastion Test

dn: cn=reader,$SUFFIX
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: $(hash reader-pass)

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups
LDIF
    for user in alice bob carol; do
        local name="${user^} Example"
        cat >> "$dir/seed.ldif" <<LDIF

dn: uid=$user,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: $user
cn: $name
sn: Example
mail: $user@bastion.test
userPassword: $(hash "$user-pass")
LDIF
    done
    # Groups are added once slapd runs, so that the memberof overlay sets memberOf on the users.
    people="ou=people,$SUFFIX"
    cat > "$dir/groups.ldif" <<LDIF
dn: cn=operators,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: operators
member: uid=alice,$people

dn: cn=admins,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: admins
member: uid=carol,$people

dn: cn=viewers,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: viewers
member: uid=alice,$people
member: uid=bob,$people
LDIF

    "$(tool slapadd)" -q -f "$dir/slapd.conf" -l "$dir/seed.ldif" >"$dir/slapadd.log" 2>&1 ||
        { cat "$dir/slapadd.log" >&2; die "slapadd failed"; }

    # Foreground mode (-d) keeps slapd a direct child whose pid we know, logging to DIR.
    nohup "$(tool slapd)" -f "$dir/slapd.conf" -h "$urls" -d stats </dev/null >"$dir/slapd.log" 2>&1 &
    local pid=$!
    echo "$pid" > "$dir/slapd.pid"

    local answered=""
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$dir/slapd.log" >&2
            die "slapd exited during startup"
        fi
        # A bounded probe: if something else answers on the port, ldapsearch must not wait forever.
        if timeout 5 ldapsearch -o nettimeout=2 -x -H "ldap://127.0.0.1:$port" -b "" -s base -LLL namingContexts >/dev/null 2>&1; then
            answered=yes
            break
        fi
        sleep 0.1
    done
    if [ -z "$answered" ]; then
        kill "$pid" 2>/dev/null || true
        tail -n 30 "$dir/slapd.log" >&2
        die "slapd did not answer on port $port within 30 s"
    fi
    timeout 30 ldapadd -o nettimeout=10 -x -H "ldap://127.0.0.1:$port" -D "$ROOT_DN" -w "$ROOT_PW" -f "$dir/groups.ldif" >"$dir/ldapadd.log" 2>&1 ||
        { cat "$dir/ldapadd.log" >&2; kill "$pid"; die "adding the groups failed"; }
    echo "$pid"
}

cmd_stop() {
    local dir=$1
    [ -f "$dir/slapd.pid" ] || die "no slapd.pid in $dir"
    local pid
    pid=$(cat "$dir/slapd.pid")
    kill "$pid" 2>/dev/null || { rm -f "$dir/slapd.pid"; return 0; }
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/slapd.pid"; return 0; }
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/slapd.pid"
}

case "${1:-}" in
    certs) [ $# -eq 2 ] || die "usage: slapd.sh certs DIR"; cmd_certs "$2" ;;
    start) [ $# -eq 3 ] || [ $# -eq 6 ] || die "usage: slapd.sh start DIR PORT [TLS_CERT TLS_KEY TLS_CA]"; cmd_start "$2" "$3" "${4:-}" "${5:-}" "${6:-}" ;;
    stop) [ $# -eq 2 ] || die "usage: slapd.sh stop DIR"; cmd_stop "$2" ;;
    *) die "usage: slapd.sh certs DIR | start DIR PORT [TLS_CERT TLS_KEY TLS_CA] | stop DIR" ;;
esac
