#!/usr/bin/env bash
# A throwaway OpenLDAP directory (Debian's slapd) on 127.0.0.1 for the tests: its own port, data dir
# and config file, stopped by the PID it wrote. Needs root and the slapd and ldap-utils packages.
#
#   LDAP_PORT=3389 LDAP_DIR=/tmp/atrium-ldap bash scripts/ldap.sh up|down|status
#
# Directory: dc=atrium,dc=test. People alice, bob, carol in ou=people (posixAccount, uid numbers of
# the Unix users of this host when they exist), with the password "<name>-ldap-pw". Groups in
# ou=groups: hpcusers (posixGroup: alice, bob), hpcadmins (groupOfNames: bob). A read-only service
# account cn=reader,ou=services (password "reader-pw") for search-then-bind. Test data only.
set -euo pipefail
PORT="${LDAP_PORT:-3389}"
DIR="${LDAP_DIR:-/tmp/atrium-ldap-$PORT}"
BASE="dc=atrium,dc=test"
URL="ldap://127.0.0.1:$PORT/"

die() { echo "ldap.sh: $*" >&2; exit 1; }

uid_of() { id -u "$1" 2>/dev/null || echo "$2"; }
gid_of() { id -g "$1" 2>/dev/null || echo "$2"; }
home_of() { getent passwd "$1" | cut -d: -f6 || true; }

write_config() {
  local rootpw
  rootpw=$(slappasswd -s admin-pw)
  cat >"$DIR/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $DIR/slapd.pid
argsfile $DIR/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
loglevel none

database mdb
maxsize 33554432
suffix "$BASE"
rootdn "cn=admin,$BASE"
rootpw $rootpw
directory $DIR/db
index objectClass eq
index uid,memberUid eq
index member eq

access to attrs=userPassword
  by self write
  by anonymous auth
  by * none
access to *
  by users read
  by anonymous auth
EOF
}

person() {
  local name=$1 n=$2
  local uid gid home
  uid=$(uid_of "$name" $((20000 + n)))
  gid=$(gid_of "$name" $((20000 + n)))
  home=$(home_of "$name")
  cat <<EOF
dn: uid=$name,ou=people,$BASE
objectClass: inetOrgPerson
objectClass: posixAccount
uid: $name
cn: ${name^} Example
sn: Example
mail: $name@atrium.test
uidNumber: $uid
gidNumber: $gid
homeDirectory: ${home:-/home/$name}
loginShell: /bin/bash
userPassword: $(slappasswd -s "$name-ldap-pw")

EOF
}

write_data() {
  {
    cat <<EOF
dn: $BASE
objectClass: dcObject
objectClass: organization
o: Atrium test
dc: atrium

dn: ou=people,$BASE
objectClass: organizationalUnit
ou: people

dn: ou=groups,$BASE
objectClass: organizationalUnit
ou: groups

dn: ou=services,$BASE
objectClass: organizationalUnit
ou: services

dn: cn=reader,ou=services,$BASE
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: $(slappasswd -s reader-pw)

EOF
    person alice 1
    person bob 2
    person carol 3
    cat <<EOF
dn: cn=hpcusers,ou=groups,$BASE
objectClass: posixGroup
cn: hpcusers
gidNumber: 30001
memberUid: alice
memberUid: bob

dn: cn=hpcadmins,ou=groups,$BASE
objectClass: groupOfNames
cn: hpcadmins
member: uid=bob,ou=people,$BASE

EOF
  } >"$DIR/data.ldif"
}

running_pid() {
  [[ -f $DIR/slapd.pid ]] || return 1
  local pid
  pid=$(cat "$DIR/slapd.pid")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

up() {
  command -v slapd >/dev/null || [[ -x /usr/sbin/slapd ]] || die "slapd is not installed (apt-get install slapd ldap-utils)"
  command -v slappasswd >/dev/null || PATH="$PATH:/usr/sbin"
  command -v ldapsearch >/dev/null || die "ldap-utils is not installed"
  if running_pid >/dev/null; then echo "ldap.sh: already running on $URL"; return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is in use"; fi
  rm -rf "$DIR"
  mkdir -p "$DIR/db"
  chmod 700 "$DIR"
  write_config
  write_data
  slapadd -q -f "$DIR/slapd.conf" -l "$DIR/data.ldif" >"$DIR/slapadd.log" 2>&1 || {
    cat "$DIR/slapadd.log" >&2
    die "slapadd failed"
  }
  /usr/sbin/slapd -h "$URL" -f "$DIR/slapd.conf" || die "slapd did not start"
  for _ in $(seq 1 100); do
    if ldapsearch -x -H "$URL" -D "cn=reader,ou=services,$BASE" -w reader-pw -b "$BASE" -s base dn >/dev/null 2>&1; then
      echo "ldap.sh: slapd (pid $(running_pid)) serving $BASE on $URL"
      return 0
    fi
    sleep 0.1
  done
  die "slapd did not answer on $URL"
}

down() {
  local pid
  if pid=$(running_pid); then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if pid=$(running_pid); then echo "running (pid $pid) on $URL"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
