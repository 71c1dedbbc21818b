#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests and for trying the
# SLURM profile on a laptop. Needs root and slurm-wlm + munge installed.
#
#   scripts/slurm_cluster.sh start [STATE_DIR]   # prints: export SLURM_CONF=...
#   scripts/slurm_cluster.sh stop  [STATE_DIR]
#
# Everything (config, munge key and socket, spool, logs, the job records in
# jobcomp.log) lives in STATE_DIR (default /tmp/psiflow-slurm). The one file
# outside it is /etc/slurm/slurm.conf, a link to STATE_DIR/slurm.conf while
# the cluster runs: Snakemake's job step drops SLURM_CONF from the environment
# of its srun, which then finds its config only there. A machine whose
# /etc/slurm/slurm.conf belongs to a real cluster is refused. The node declares CPUS cores
# (default 8) even on a smaller machine, so that several small jobs and Parsl
# pilot jobs can run at once.
set -euo pipefail

action=${1:?usage: $0 start|stop [STATE_DIR]}
state=$(realpath -m "${2:-/tmp/psiflow-slurm}")
cpus=${CPUS:-8}
memory_mb=${MEMORY_MB:-16000}
SYSTEM_CONF=/etc/slurm/slurm.conf

stop() {
  for daemon in slurmd slurmctld munged; do
    if [ -f "$state/$daemon.pid" ]; then
      kill "$(cat "$state/$daemon.pid")" 2>/dev/null || true
    fi
  done
  # wait for the daemons to go, so that a restart can bind the same ports
  for _ in $(seq 50); do
    alive=0
    for daemon in slurmd slurmctld munged; do
      if [ -f "$state/$daemon.pid" ] && kill -0 "$(cat "$state/$daemon.pid")" 2>/dev/null; then
        alive=1
      fi
    done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  rm -f "$state"/*.pid
  if [ "$(readlink "$SYSTEM_CONF" 2>/dev/null)" = "$state/slurm.conf" ]; then
    rm -f "$SYSTEM_CONF"
  fi
}

start() {
  if [ "$(id -u)" != 0 ]; then
    echo "slurm_cluster: must run as root (slurmd starts jobs as their users)" >&2
    exit 1
  fi
  for tool in munged slurmctld slurmd sbatch; do
    if ! command -v "$tool" >/dev/null; then
      echo "slurm_cluster: $tool not found; run 'scripts/setup.sh --slurm' (apt-get install slurm-wlm munge)" >&2
      exit 1
    fi
  done
  if [ -e "$SYSTEM_CONF" ] && ! grep -q "^ClusterName=psiflow-test" "$SYSTEM_CONF"; then
    echo "slurm_cluster: $SYSTEM_CONF exists and is not a psiflow test cluster's; not starting" >&2
    exit 1
  fi
  stop
  # a fresh cluster every start: no job or node state from an earlier one
  rm -rf "$state/ctld" "$state/spool" "$state/jobcomp.log"
  mkdir -p "$state"/{ctld,spool,munge} "$(dirname "$SYSTEM_CONF")"
  chmod 700 "$state/munge"
  [ -f "$state/munge/munge.key" ] || dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$state/munge/munge.key"
  munged --force --socket="$state/munge/socket" --key-file="$state/munge/munge.key" \
    --pid-file="$state/munged.pid" --log-file="$state/munge/munged.log" --seed-file="$state/munge/seed"

  cat >"$state/slurm.conf" <<EOF
ClusterName=psiflow-test
SlurmctldHost=$(hostname)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge/socket
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# no cgroups in containers: track processes through /proc
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=500
MailProg=/bin/true
# finished jobs stay visible to squeue/scontrol for 10 minutes
MinJobAge=600
# let the node declare more CPUs than this machine has
SlurmdParameters=config_overrides
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# one line per finished job: the job records the tests read
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.log
NodeName=$(hostname) NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  ln -sfn "$state/slurm.conf" "$SYSTEM_CONF"
  export SLURM_CONF="$state/slurm.conf"
  if ! slurmctld -i || ! slurmd; then
    echo "slurm_cluster: a daemon did not start; see $state/slurmctld.log and $state/slurmd.log" >&2
    tail -3 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
    exit 1
  fi
  for _ in $(seq 100); do
    if sinfo -h -o %T 2>/dev/null | grep -qE "^idle"; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.2
  done
  echo "slurm_cluster: the node did not become idle; see $state/slurmctld.log and $state/slurmd.log" >&2
  sinfo >&2 || true
  exit 1
}

case "$action" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop [STATE_DIR]" >&2; exit 2 ;;
esac
