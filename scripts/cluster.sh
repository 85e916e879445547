#!/usr/bin/env bash
# Throwaway Slurm 22.05 test cluster on this one machine (4 slurmd on 127.0.0.1, fake GPUs,
# optional slurmdbd + private MariaDB). Used by the e2e tests and by developers.
#
#   bash scripts/cluster.sh up|down|status|env|restart-ctld|stop-ctld|start-ctld
#   bash scripts/cluster.sh kill-slurmd NODE|start-slurmd NODE   (node failure tests)
#
# Parameters (environment):
#   CLUSTER_NAME  ClusterName, [a-z][a-z0-9_]*            (default atrium)
#   CLUSTER_BASE  state directory, wiped by `up`          (default /tmp/atrium-slurm-$CLUSTER_NAME)
#   CLUSTER_PORT  slurmctld port P; this cluster uses P..P+6 (default 6817)
#                   P+1 slurmdbd, P+2 MariaDB, P+3..P+6 the four slurmd.
#                   Keep CLUSTER_PORT values of clusters that run side by side >= 10 apart.
#   NODE_PREFIX   node names ${NODE_PREFIX}1..4              (default node)
#   WITH_DBD      1: slurmdbd + MariaDB, sacct/sacctmgr work; 0: accounting_storage/none (default 1)
#   EXTRA_CONF    lines added to slurm.conf, e.g. "MaxJobCount=30000" (bench:scale)   (default none)
#
# Everything runs as root and is started by hand (no systemd). Each cluster has its own munged
# (socket under CLUSTER_BASE, shared /etc/munge/munge.key), so clusters never share a daemon and
# `down` stops exactly the processes it started, by the PIDs it recorded.
set -euo pipefail

CLUSTER_NAME=${CLUSTER_NAME:-atrium}
CLUSTER_BASE=${CLUSTER_BASE:-/tmp/atrium-slurm-$CLUSTER_NAME}
CLUSTER_PORT=${CLUSTER_PORT:-6817}
NODE_PREFIX=${NODE_PREFIX:-node}
WITH_DBD=${WITH_DBD:-1}
EXTRA_CONF=${EXTRA_CONF:-}

BASE=$CLUSTER_BASE
ETC=$BASE/etc
RUN=$BASE/run
LOG=$RUN/log
CONF=$ETC/slurm.conf
MUNGE_DIR=$RUN/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
MYSQL_DIR=$RUN/mysql
MARKER=$BASE/.atrium-test-cluster

CTLD_PORT=$CLUSTER_PORT
DBD_PORT=$((CLUSTER_PORT + 1))
MYSQL_PORT=$((CLUSTER_PORT + 2))
NODES=("${NODE_PREFIX}1" "${NODE_PREFIX}2" "${NODE_PREFIX}3" "${NODE_PREFIX}4")
node_port() { echo $((CLUSTER_PORT + 2 + $1)); } # node index 1..4 -> P+3..P+6

T0=$(date +%s.%N)
die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
say() { printf '[cluster %s %6ss] %s\n' "$CLUSTER_NAME" "$(elapsed)" "$*"; }

check_params() {
  [[ $CLUSTER_NAME =~ ^[a-z][a-z0-9_]{0,39}$ ]] || die "CLUSTER_NAME must match [a-z][a-z0-9_]* (got '$CLUSTER_NAME')"
  [[ $CLUSTER_PORT =~ ^[0-9]+$ ]] && ((CLUSTER_PORT >= 1024 && CLUSTER_PORT <= 65500)) ||
    die "CLUSTER_PORT must be a number in 1024..65500"
  [[ $NODE_PREFIX =~ ^[a-z][a-z0-9_-]{0,30}$ ]] || die "NODE_PREFIX must match [a-z][a-z0-9_-]*"
  [[ $WITH_DBD == 0 || $WITH_DBD == 1 ]] || die "WITH_DBD must be 0 or 1"
  [[ $BASE == /* && $BASE != / && $BASE != *..* ]] || die "CLUSTER_BASE must be an absolute path (got '$BASE')"
  [[ $BASE =~ ^[A-Za-z0-9_./-]+$ ]] || die "CLUSTER_BASE may hold only [A-Za-z0-9_./-]"
}

# ---------------------------------------------------------------------------------------------
# Processes: a PID counts as ours only if it is alive and its command line or environment names
# our BASE (so a stale pid file whose PID was reused by something else is never signalled).
pid_of() { # pidfile -> pid on stdout if the process is alive and ours
  local f=$1 pid
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid && -d /proc/$pid ]] || return 1
  [[ $(cat "/proc/$pid/stat" 2>/dev/null | awk '{print $3}') != Z ]] || return 1
  if tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$BASE/" ||
    tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF -- "SLURM_CONF=$CONF"; then
    echo "$pid"
    return 0
  fi
  return 1
}

stop_pidfile() { # pidfile label [seconds]
  local f=$1 label=$2 secs=${3:-15} pid i
  if pid=$(pid_of "$f"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
      [[ -d /proc/$pid ]] || break
      [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
      sleep 0.1
    done
    if [[ -d /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
      say "$label (pid $pid) ignored SIGTERM for ${secs}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped $label (pid $pid)"
  fi
  rm -f "$f"
}

# Processes that belong to jobs of this cluster and outlived their daemons: slurmstepd (its cwd
# is under BASE) and job processes (their environment holds our SLURM_CONF and a SLURM_JOB_ID).
leftover_pids() {
  local f pid
  for f in $(grep -lx slurmstepd /proc/[0-9]*/comm 2>/dev/null); do
    pid=${f#/proc/}
    pid=${pid%/comm}
    if [[ $(readlink "/proc/$pid/cwd" 2>/dev/null)/ == "$BASE"/* ]] ||
      tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$BASE/"; then
      echo "$pid"
    fi
  done
  for f in $(grep -lzxF -- "SLURM_CONF=$CONF" /proc/[0-9]*/environ 2>/dev/null); do
    pid=${f#/proc/}
    pid=${pid%/environ}
    [[ $pid == "$$" || $pid == "$PPID" ]] && continue
    grep -qz '^SLURM_JOB_ID=' "/proc/$pid/environ" 2>/dev/null && echo "$pid"
  done
  return 0
}

# wait_for SECONDS command...: run the command every 0.1 s until it succeeds; fail after SECONDS.
wait_for() {
  local secs=$1
  shift
  local end=$((SECONDS + secs))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    ((SECONDS < end)) || return 1
    sleep 0.1
  done
}

short_hostname() {
  local h
  h=$(hostname -s 2>/dev/null || uname -n)
  echo "${h%%.*}"
}

ctld_alive() { pid_of "$RUN/slurmctld.pid" >/dev/null; }

export SLURM_CONF=$CONF

# ---------------------------------------------------------------------------------------------
install_packages() {
  local want=(munge slurmctld slurmd slurm-client procps)
  ((WITH_DBD)) && want+=(slurmdbd mariadb-server mariadb-client)
  local missing=() p
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "installing ${missing[*]}"
  # Keep Debian's postinst scripts from starting system-wide munged/mariadb (no systemd here).
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${missing[@]}"; then
    apt-get -o DPkg::Lock::Timeout=900 update && apt-get -o DPkg::Lock::Timeout=900 install -y \
      --no-install-recommends "${missing[@]}" || rc=$?
  fi
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get install failed"
  say "installed"
}

ensure_users() {
  local u
  for u in alice bob carol; do
    id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"
    local h
    h=$(getent passwd "$u" | cut -d: -f6)
    mkdir -p "$h"
    chown "$u:" "$h"
    chmod 700 "$h"
  done
  getent group hpcusers >/dev/null || groupadd hpcusers
  usermod -aG hpcusers alice
  usermod -aG hpcusers bob
}

ensure_munge_key() {
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    mungekey --create --force
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 700 /etc/munge
  chmod 400 /etc/munge/munge.key
}

# Ports of this cluster must be free before `up` (another cluster or program may hold them).
check_ports() {
  local p ports=("$CTLD_PORT")
  for i in 1 2 3 4; do ports+=("$(node_port "$i")"); done
  ((WITH_DBD)) && ports+=("$DBD_PORT" "$MYSQL_PORT")
  for p in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "port $p is in use (another cluster? choose another CLUSTER_PORT, >= 10 apart)"
    fi
  done
}

write_configs() {
  local host
  host=$(short_hostname)
  mkdir -p "$ETC" "$RUN/state" "$LOG" "$RUN/fakegpu"
  local n
  for n in "${NODES[@]}"; do mkdir -p "$RUN/spool/$n"; done
  # Fake GPUs: gres.conf File= must name character devices (plain files or Count= alone fail in 22.05).
  for n in "${NODES[0]}" "${NODES[1]}"; do
    for g in 0 1; do
      [[ -c $RUN/fakegpu/$n-gpu$g ]] || mknod "$RUN/fakegpu/$n-gpu$g" c 1 3
    done
  done
  local acct
  if ((WITH_DBD)); then
    acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
# limits: association limits (GrpTRESMins) are enforced and usage is counted at each job's end (sshare's
# GrpTRESRaw, the usage page, test/e2e/usage-quotas); no limit is set unless a test sets one.
AccountingStorageEnforce=associations,limits
# Fair share computed (sshare's FairShare) with a weight of 1, so every job's priority stays 1 and the
# queue order FIFO as with priority/basic; the factors are recomputed every minute.
PriorityType=priority/multifactor
PriorityWeightFairshare=1
PriorityCalcPeriod=1
JobAcctGatherType=jobacct_gather/linux
# Sampled every 2 s so even a short job has a MaxRSS (the history's memory efficiency, test/e2e/history).
JobAcctGatherFrequency=task=2"
  else
    acct="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
  fi
  cat >"$CONF" <<EOF
# Generated by scripts/cluster.sh for the Atrium test cluster '$CLUSTER_NAME'. Do not edit.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$CTLD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$RUN/state
SlurmdSpoolDir=$RUN/spool/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1,bf_resolution=60
$acct
$EXTRA_CONF
JobCompType=jobcomp/none
MpiDefault=none
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
MailProg=/bin/true
PrivateData=jobs
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=300
EnforcePartLimits=ALL
SlurmdParameters=config_overrides
GresTypes=gpu
DefMemPerCPU=1024
NodeName=${NODE_PREFIX}[1-2] NodeHostname=$host NodeAddr=127.0.0.1 Port=[$(node_port 1)-$(node_port 2)] CPUs=16 Sockets=1 CoresPerSocket=16 ThreadsPerCore=1 RealMemory=65536 Gres=gpu:2 State=UNKNOWN
NodeName=${NODE_PREFIX}[3-4] NodeHostname=$host NodeAddr=127.0.0.1 Port=[$(node_port 3)-$(node_port 4)] CPUs=8 Sockets=1 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=32768 State=UNKNOWN
PartitionName=interactive Nodes=${NODE_PREFIX}[1-4] Default=YES MaxTime=7-00:00:00 State=UP OverSubscribe=FORCE:5
PartitionName=batch Nodes=${NODE_PREFIX}[1-4] MaxTime=INFINITE State=UP
EOF
  cat >"$ETC/gres.conf" <<EOF
NodeName=${NODES[0]} Name=gpu File=$RUN/fakegpu/${NODES[0]}-gpu[0-1]
NodeName=${NODES[1]} Name=gpu File=$RUN/fakegpu/${NODES[1]}-gpu[0-1]
EOF
  # plugstack.conf is looked up next to slurm.conf; an empty one keeps Debian's /etc/slurm out.
  : >"$ETC/plugstack.conf"
  if ((WITH_DBD)); then
    cat >"$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
CommunicationParameters=NoInAddrAny
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=slurmdbpass
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$ETC/slurmdbd.conf"
  fi
  chmod 755 "$BASE" "$ETC" "$RUN"
}

munge_ok() { munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET"; }

start_munged() {
  if pid_of "$MUNGE_DIR/munged.pid" >/dev/null; then return 0; fi
  mkdir -p "$MUNGE_DIR"
  chown munge:munge "$MUNGE_DIR"
  chmod 755 "$MUNGE_DIR"
  runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_DIR/munged.pid" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" --force
  wait_for 10 munge_ok || die "munged did not start, see $MUNGE_DIR/munged.log"
  say "munged up (socket $MUNGE_SOCKET)"
}

start_mariadb() {
  if pid_of "$MYSQL_DIR/mariadbd.pid" >/dev/null; then return 0; fi
  local fresh=0
  if [[ ! -d $MYSQL_DIR/mysql ]]; then
    mkdir -p "$MYSQL_DIR"
    chown mysql:mysql "$MYSQL_DIR"
    mariadb-install-db --user=mysql --datadir="$MYSQL_DIR" --auth-root-authentication-method=socket \
      --skip-test-db >"$LOG/mariadb-install.log" 2>&1 || die "mariadb-install-db failed, see $LOG/mariadb-install.log"
    fresh=1
    say "mariadb datadir created"
  fi
  setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$MYSQL_DIR" --socket="$MYSQL_DIR/mysqld.sock" \
    --pid-file="$MYSQL_DIR/mariadbd.pid" --bind-address=127.0.0.1 --port="$MYSQL_PORT" --skip-name-resolve \
    --log-error="$LOG/mariadb.err" --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 \
    </dev/null >/dev/null 2>&1 &
  wait_for 60 mariadb-admin --no-defaults -S "$MYSQL_DIR/mysqld.sock" -u root ping ||
    die "mariadbd did not start, see $LOG/mariadb.err"
  if ((fresh)); then
    mariadb --no-defaults -S "$MYSQL_DIR/mysqld.sock" -u root -e \
      "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmdbpass';
       GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  fi
  say "mariadbd up (port $MYSQL_PORT)"
}

start_slurmdbd() {
  if pid_of "$RUN/slurmdbd.pid" >/dev/null; then return 0; fi
  /usr/sbin/slurmdbd || die "slurmdbd did not start, see $LOG/slurmdbd.log"
  wait_for 60 timeout 10 sacctmgr -n show cluster format=cluster || die "slurmdbd does not answer, see $LOG/slurmdbd.log"
  say "slurmdbd up (port $DBD_PORT)"
}

setup_accounts() {
  # The database is new (up wipes BASE): register the cluster and the associations before slurmctld
  # starts, because AccountingStorageEnforce=associations refuses users without one.
  sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null
  sacctmgr -i add account research,physics Cluster="$CLUSTER_NAME" Description=atrium Organization=atrium >/dev/null
  sacctmgr -i add user alice,carol Account=research DefaultAccount=research >/dev/null
  sacctmgr -i add user bob Account=physics DefaultAccount=physics >/dev/null
  say "accounts research(alice,carol) physics(bob)"
}

ctld_ping() { timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurmctld() {
  if ctld_alive; then return 0; fi
  rm -f "$RUN/slurmctld.pid"
  /usr/sbin/slurmctld -f "$CONF" || die "slurmctld did not start, see $LOG/slurmctld.log"
  wait_for 60 ctld_ping || die "slurmctld does not answer, see $LOG/slurmctld.log"
  say "slurmctld up (port $CTLD_PORT)"
}

nodes_ready() {
  local states
  states=$(timeout 10 sinfo -h -N -o '%N %t' | sort -u) || return 1
  [[ $(wc -l <<<"$states") == 4 ]] && ! grep -qv ' idle$\| mix$\| alloc$' <<<"$states"
}

start_slurmds() {
  local n
  for n in "${NODES[@]}"; do
    pid_of "$RUN/slurmd-$n.pid" >/dev/null && continue
    rm -f "$RUN/slurmd-$n.pid"
    /usr/sbin/slurmd -f "$CONF" -N "$n" || die "slurmd $n did not start, see $LOG/slurmd-$n.log"
  done
  wait_for 60 nodes_ready || die "nodes did not become idle: $(sinfo -h -N -o '%N %t' | tr '\n' ' ') (see $LOG/slurmd-*.log)"
  say "nodes up: $(sinfo -h -N -o '%N %t' | sort -u | tr '\n' ' ')"
}

create_reservations() {
  local have
  have=$(scontrol show reservation -o 2>/dev/null || true)
  # CoreCnt=2 on one 8-core node: the rest of the node stays usable by everyone.
  grep -q 'ReservationName=alice_res ' <<<"$have" ||
    scontrol create reservation ReservationName=alice_res Users=alice Nodes="${NODES[2]}" CoreCnt=2 \
      StartTime=now Duration=UNLIMITED >/dev/null
  grep -q 'ReservationName=bob_res ' <<<"$have" ||
    scontrol create reservation ReservationName=bob_res Users=bob Nodes="${NODES[3]}" CoreCnt=2 \
      StartTime=now Duration=UNLIMITED >/dev/null
  say "reservations alice_res(${NODES[2]}, 2 cores) bob_res(${NODES[3]}, 2 cores)"
}

write_cluster_json() {
  local host
  host=$(short_hostname)
  cat >"$BASE/cluster.json.tmp" <<EOF
{
  "name": "$CLUSTER_NAME",
  "base": "$BASE",
  "slurmConf": "$CONF",
  "port": $CTLD_PORT,
  "nodePrefix": "$NODE_PREFIX",
  "withDbd": $([[ $WITH_DBD == 1 ]] && echo true || echo false),
  "dbdPort": $([[ $WITH_DBD == 1 ]] && echo "$DBD_PORT" || echo null),
  "mungeSocket": "$MUNGE_SOCKET",
  "hostname": "$host",
  "partitions": [
    { "name": "interactive", "default": true, "overSubscribe": "FORCE:5", "maxTimeMinutes": 10080 },
    { "name": "batch", "default": false }
  ],
  "nodes": [
    { "name": "${NODES[0]}", "address": "127.0.0.1", "port": $(node_port 1), "cpus": 16, "memoryMb": 65536, "gpus": 2 },
    { "name": "${NODES[1]}", "address": "127.0.0.1", "port": $(node_port 2), "cpus": 16, "memoryMb": 65536, "gpus": 2 },
    { "name": "${NODES[2]}", "address": "127.0.0.1", "port": $(node_port 3), "cpus": 8, "memoryMb": 32768, "gpus": 0 },
    { "name": "${NODES[3]}", "address": "127.0.0.1", "port": $(node_port 4), "cpus": 8, "memoryMb": 32768, "gpus": 0 }
  ],
  "users": ["alice", "bob", "carol"],
  "accounts": $([[ $WITH_DBD == 1 ]] && echo '{ "alice": ["research"], "carol": ["research"], "bob": ["physics"] }' || echo null),
  "reservations": [
    { "name": "alice_res", "users": ["alice"], "nodes": ["${NODES[2]}"], "cores": 2 },
    { "name": "bob_res", "users": ["bob"], "nodes": ["${NODES[3]}"], "cores": 2 }
  ]
}
EOF
  mv "$BASE/cluster.json.tmp" "$BASE/cluster.json"
}

# True when every daemon of the cluster runs and slurmctld answers.
all_up() {
  pid_of "$MUNGE_DIR/munged.pid" >/dev/null || return 1
  ctld_alive || return 1
  local n
  for n in "${NODES[@]}"; do pid_of "$RUN/slurmd-$n.pid" >/dev/null || return 1; done
  if ((WITH_DBD)); then
    pid_of "$RUN/slurmdbd.pid" >/dev/null || return 1
    pid_of "$MYSQL_DIR/mariadbd.pid" >/dev/null || return 1
  fi
  [[ -s $BASE/cluster.json ]] || return 1
  ctld_ping
}

# Refuse to wipe a directory that this script did not make.
prepare_base() {
  if [[ -e $BASE && ! -e $MARKER ]]; then
    if [[ -n $(ls -A "$BASE" 2>/dev/null) ]]; then
      die "$BASE exists, is not empty and was not made by cluster.sh: refusing to wipe it"
    fi
  fi
  rm -rf "$ETC" "$RUN" "$BASE/cluster.json"
  mkdir -p "$BASE"
  touch "$MARKER"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "must run as root"
  if [[ -e $BASE/cluster.json ]] && grep -q "\"withDbd\": $([[ $WITH_DBD == 1 ]] && echo true || echo false)" "$BASE/cluster.json" &&
    { [[ -z $EXTRA_CONF ]] || grep -qxF "$EXTRA_CONF" "$CONF"; } && all_up; then
    say "already up ($CONF)"
    return 0
  fi
  install_packages
  # Whatever is left of an earlier run (crash, partial start) is stopped by its recorded PIDs.
  stop_all quiet
  check_ports
  prepare_base
  ensure_users
  ensure_munge_key
  write_configs
  say "config written to $ETC"
  start_munged
  if ((WITH_DBD)); then
    start_mariadb
    start_slurmdbd
    setup_accounts
  fi
  start_slurmctld
  start_slurmds
  create_reservations
  write_cluster_json
  say "cluster '$CLUSTER_NAME' is up in $(elapsed)s: export SLURM_CONF=$CONF"
}

cancel_jobs() {
  ctld_alive || return 0
  local ids i
  ids=$(squeue -h -a -t PD,R,CG,S,CF,RQ,RH,RS,SI,SO,ST -o %A 2>/dev/null | sort -u || true)
  if [[ -n $ids ]]; then
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null || true
    say "cancelled $(wc -w <<<"$ids") job(s)"
  fi
  for ((i = 0; i < 150; i++)); do
    [[ -z $(squeue -h -a -t R,CG,S -o %A 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  say "jobs still running or completing after 15 s"
}

stop_all() {
  local quiet=${1:-}
  cancel_jobs || true
  local n
  for n in "${NODES[@]}"; do stop_pidfile "$RUN/slurmd-$n.pid" "slurmd $n"; done
  stop_pidfile "$RUN/slurmctld.pid" slurmctld 20
  stop_pidfile "$RUN/slurmdbd.pid" slurmdbd 20
  stop_pidfile "$MYSQL_DIR/mariadbd.pid" mariadbd 30
  stop_pidfile "$MUNGE_DIR/munged.pid" munged
  local left
  left=$(leftover_pids | tr '\n' ' ')
  if [[ -n ${left// /} ]]; then
    say "killing leftover job processes: $left"
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
  fi
  [[ -n $quiet ]] || say "down"
}

cmd_down() {
  [[ $(id -u) == 0 ]] || die "must run as root"
  [[ -d $BASE ]] || {
    say "nothing at $BASE"
    return 0
  }
  stop_all
  rm -f "$BASE/cluster.json"
}

cmd_status() {
  local f label pid any=0
  printf 'cluster %s at %s (slurmctld port %s, WITH_DBD=%s)\n' "$CLUSTER_NAME" "$BASE" "$CTLD_PORT" "$WITH_DBD"
  local files=("$MUNGE_DIR/munged.pid")
  ((WITH_DBD)) && files+=("$MYSQL_DIR/mariadbd.pid" "$RUN/slurmdbd.pid")
  files+=("$RUN/slurmctld.pid")
  local n
  for n in "${NODES[@]}"; do files+=("$RUN/slurmd-$n.pid"); done
  for f in "${files[@]}"; do
    label=$(basename "$f" .pid)
    if pid=$(pid_of "$f"); then
      printf '  %-16s running  pid %s\n' "$label" "$pid"
      any=1
    elif [[ -e $f ]]; then
      printf '  %-16s stopped  (stale pid file)\n' "$label"
    else
      printf '  %-16s stopped\n' "$label"
    fi
  done
  if ctld_alive && ctld_ping; then
    sinfo -h -N -o '  %N %t %C %G' 2>&1 | sort -u || true
    echo "  jobs known to slurmctld: $(squeue -h -a -t all -o %A 2>/dev/null | wc -l)"
  fi
  if all_up; then
    echo "  state: up (export SLURM_CONF=$CONF)"
  elif ((any)); then
    echo "  state: partly up (run up to restart or down to stop)"
  else
    echo "  state: down"
  fi
}

cmd_env() {
  echo "export SLURM_CONF=$CONF"
  echo "export ATRIUM_TEST_CLUSTER_BASE=$BASE"
}

cmd_stop_ctld() {
  stop_pidfile "$RUN/slurmctld.pid" slurmctld 20
}

cmd_start_ctld() {
  [[ -s $CONF ]] || die "no cluster at $BASE (run up first)"
  start_slurmctld
}

node_arg() { # NODE -> validated name of one of this cluster's nodes
  local n
  for n in "${NODES[@]}"; do [[ ${1:-} == "$n" ]] && echo "$n" && return 0; done
  die "unknown node '${1:-}' (nodes: ${NODES[*]})"
}

# A node failure as the tests make it: its slurmd dies without a word (SIGKILL, by the recorded PID).
# The job's slurmstepd and processes stay, as they would on a node that lost its daemon.
cmd_kill_slurmd() {
  local n pid
  n=$(node_arg "$1")
  pid=$(pid_of "$RUN/slurmd-$n.pid") || die "slurmd $n is not running"
  kill -KILL "$pid"
  say "killed slurmd $n (pid $pid)"
}

# The node back in service: its slurmd again, then `state=resume` in case slurmctld had marked it DOWN
# (ReturnToService=2 usually returns it alone), then wait until it takes jobs.
cmd_start_slurmd() {
  local n
  n=$(node_arg "$1")
  [[ -s $CONF ]] || die "no cluster at $BASE (run up first)"
  if ! pid_of "$RUN/slurmd-$n.pid" >/dev/null; then
    rm -f "$RUN/slurmd-$n.pid"
    /usr/sbin/slurmd -f "$CONF" -N "$n" || die "slurmd $n did not start, see $LOG/slurmd-$n.log"
  fi
  node_ready() { timeout 10 sinfo -h -N -n "$n" -o '%t' | grep -qx 'idle\|mix\|alloc\|resv'; }
  local i
  for ((i = 0; i < 600; i++)); do
    node_ready && break
    # Only a DOWN node takes `resume`; any other state refuses it, harmlessly.
    if ((i % 20 == 0)) && timeout 10 sinfo -h -N -n "$n" -o '%t' | grep -q '^down'; then
      scontrol update nodename="$n" state=resume >/dev/null 2>&1 || true
    fi
    sleep 0.1
  done
  node_ready || die "node $n did not come back: $(sinfo -h -N -n "$n" -o '%t')"
  say "node $n is back: $(sinfo -h -N -n "$n" -o '%t' | sort -u | tr '\n' ' ')"
}

check_params
case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
stop-ctld) cmd_stop_ctld ;;
start-ctld) cmd_start_ctld ;;
restart-ctld)
  cmd_stop_ctld
  cmd_start_ctld
  ;;
kill-slurmd) cmd_kill_slurmd "${2:-}" ;;
start-slurmd) cmd_start_slurmd "${2:-}" ;;
*)
  echo "usage: bash scripts/cluster.sh up|down|status|env|restart-ctld|stop-ctld|start-ctld|kill-slurmd NODE|start-slurmd NODE" >&2
  exit 2
  ;;
esac
