#!/usr/bin/env bash
# A single-node SLURM cluster on localhost for CI and tests (Debian's slurm-wlm + munge).
#   bash .ci/slurm.sh start    install if absent, configure, start the daemons, wait until the node is idle
#   bash .ci/slurm.sh stop     stop only the daemons that `start` started
#   bash .ci/slurm.sh status   sinfo, and the daemons this script started
# No systemd and no slurmdbd: the daemons are started directly, there is no accounting, so
# Snakemake's slurm executor must poll with `--slurm-status-command squeue`.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by reprolab .ci/slurm.sh"
PARTITION=${REPROLAB_SLURM_PARTITION:-main}
RUN_DIR=/run/reprolab-slurm
STARTED=$RUN_DIR/started        # one line per daemon we started: "<name> <pid>"
LOG_DIR=/var/log/slurm

log() { echo "[slurm.sh] $*" >&2; }

responding() { timeout 10 scontrol ping >/dev/null 2>&1; }

node_state() { timeout 10 sinfo -h -N -o %T 2>/dev/null | head -1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sinfo >/dev/null; then
        return
    fi
    log "installing slurm-wlm and munge"
    local t0=$SECONDS own_policy=""
    # Keep dpkg from trying to start the services it installs (no init system here).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; }
    [[ -n $own_policy ]] && rm -f /usr/sbin/policy-rc.d
    log "installed in $((SECONDS - t0)) s"
}

write_conf() {
    if [[ -e $CONF ]] && ! grep -qxF "$MARK" "$CONF"; then
        log "$CONF exists and was not written by this script: using it as it is"
        return
    fi
    local node host mem_total mem
    host=$(hostname -s)
    # slurmd -C prints this host's topology as a NodeName line; a node configured with more
    # than it has gets drained, so take it from there and only lower RealMemory.
    node=$(slurmd -C | head -1)
    mem_total=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
    mem=$((mem_total - (mem_total / 10 > 1024 ? mem_total / 10 : 1024)))
    node=$(sed "s/RealMemory=[0-9]*/RealMemory=$mem/" <<<"$node")
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF" <<EOF
$MARK
ClusterName=reprolab
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# Finished jobs stay visible to squeue this long: Snakemake's squeue polling and the tests rely on it.
MinJobAge=3600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    log "wrote $CONF: $node"
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge
    chown munge:munge /run/munge
    runuser -u munge -- munged
    echo "munged $(cat /run/munge/munged.pid)" >>"$STARTED"
}

start_daemon() { # name
    local name=$1 pidfile=$RUN_DIR/$1.pid
    if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        return
    fi
    "$name"
    for _ in $(seq 50); do
        [[ -s $pidfile ]] && break
        sleep 0.1
    done
    if [[ ! -s $pidfile ]]; then
        log "$name did not start"
        tail -n 20 "$LOG_DIR/$name.log" >&2 || true
        exit 1
    fi
    echo "$name $(cat "$pidfile")" >>"$STARTED"
}

start() {
    if responding && [[ $(node_state) =~ ^(idle|mix|alloc) ]]; then
        log "SLURM is already up"
        return
    fi
    local t0=$SECONDS
    install_packages
    write_conf
    mkdir -p "$RUN_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
    start_munge
    start_daemon slurmctld
    start_daemon slurmd
    local state=""
    for _ in $(seq 60); do
        state=$(node_state || true)
        [[ $state == idle ]] && timeout 10 scontrol show slurmd >/dev/null 2>&1 && break
        sleep 1
    done
    if [[ $state != idle ]]; then
        log "node not idle after 60 s (state: ${state:-no answer})"
        sinfo -N -o '%N %T %E' || true
        tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" || true
        exit 1
    fi
    log "SLURM up in $((SECONDS - t0)) s: partition $PARTITION, node $(hostname -s) idle"
}

stop() {
    if [[ ! -s $STARTED ]]; then
        log "no daemons started by this script"
        return
    fi
    local name pid
    # Reverse order: slurmd, slurmctld, then munged, which the other two need to shut down.
    while read -r name pid; do
        # Skip a pid that has been reused by another program.
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            log "stopped $name ($pid)"
        fi
    done < <(tac "$STARTED")
    rm -f "$STARTED"
}

status() {
    sinfo -N -o '%N %P %T %c %m' || true
    if [[ -s $STARTED ]]; then
        log "started by this script: $(cut -d' ' -f1 "$STARTED" | tr '\n' ' ')"
    fi
}

case ${1:-} in
    start | stop | status) "$1" ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
