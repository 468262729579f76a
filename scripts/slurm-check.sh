#!/bin/sh
# A real Slurm check of `benchbench slurm`: installs Debian's slurm-wlm and munge, starts a
# one-node cluster on this machine (slurmctld + slurmd), submits a tiny suite split into 3 shards
# with `benchbench slurm --submit`, waits for the array and the merge job, and checks that the
# merged database holds one finished run with every trial. Needs root (or sudo) and systemd-free
# daemons (it starts them itself). Usage: scripts/slurm-check.sh [WORK_DIR]
set -eu
work=${1:-/tmp/benchbench-slurm-check}
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
repo=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v slurmctld >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq slurm-wlm munge >/dev/null
fi
make -C "$repo" release >/dev/null
bb="$repo/.build/release/benchbench"

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024) - 512}' /proc/meminfo)
$sudo mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
$sudo tee /etc/slurm/slurm.conf >/dev/null <<CONF
ClusterName=benchbench-check
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
[ -f /etc/munge/munge.key ] || $sudo sh -c 'dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null && chmod 400 /etc/munge/munge.key'
$sudo chown -R munge:munge /etc/munge /run/munge 2>/dev/null || true
pgrep -x munged >/dev/null || $sudo -u munge munged 2>/dev/null || $sudo munged --force
pgrep -x slurmctld >/dev/null || $sudo slurmctld
pgrep -x slurmd >/dev/null || $sudo slurmd
for _ in $(seq 1 30); do sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed" && break; sleep 1; done
sinfo

rm -rf "$work"; mkdir -p "$work"
cat > "$work/tiny.yaml" <<YAML
description: slurm check
datasets:
  - {name: glyphs, classes: 12, instances: 12, test_instances: 4, split: [6, 1, 5]}
backbone: {name: mlp, hidden: [32]}
seeds: 2
budgets: [2, 3, all]
validation: 2
protocols: [native, knn]
methods:
  supervised: {training: {steps: 15, warmupSteps: 2, validateEvery: 5}, batchSize: 16}
YAML
cd "$work"
"$bb" slurm tiny.yaml --shards 3 --cpus 1 --mem 1G --time 0:10:00 --partition check --out "$work/out" --submit
for _ in $(seq 1 300); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 2; done
cat "$work/out/logs/merge.out"
"$bb" runs --db "$work/out/benchbench.sqlite"
"$bb" show latest --db "$work/out/benchbench.sqlite" | grep -q "done" || { echo "error: no finished merged run" >&2; exit 1; }
trials=$("$bb" show latest --json --db "$work/out/benchbench.sqlite" | python3 -c "import json,sys; d=json.load(sys.stdin); print(sum(1 for t in d['trials'] if t['status']=='done'))")
[ "$trials" = 6 ] || { echo "error: expected 6 finished trials in the merged run, found $trials" >&2; exit 1; }
echo "ok: 3 array tasks and a merge job ran under Slurm; the merged run holds all 6 trials"
