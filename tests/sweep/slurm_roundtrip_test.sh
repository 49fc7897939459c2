#!/bin/bash
# The Slurm round trip of `fpqvar sweep` on a single-node cluster started here on localhost (NOTES.md): a private
# munged (own key, socket, pid and log files), slurmctld and slurmd on free ports with their state in a temporary
# folder. Part of a sweep is run locally first; `sweep slurm --wait` submits only the missing points as a job array,
# each task writing its own shard; `sweep collect` merges them. Checked: the submission's point count, every point
# in the database once, a second `sweep slurm` with nothing to submit, `collect --clean`.
# Usage: slurm_roundtrip_test.sh FPQVAR SOURCE_DIR.   Exit 77 = skipped (the reason is printed);
# FPQVAR_REQUIRE_SLURM=1 makes a skip a failure (for a CI machine that must run it).
set -uo pipefail
fpqvar="$1"
skip() {
  echo "SKIPPED: $*" >&2
  if [[ "${FPQVAR_REQUIRE_SLURM:-0}" == "1" ]]; then echo "FPQVAR_REQUIRE_SLURM=1: failing instead" >&2; exit 1; fi
  exit 77
}
fail() { echo "FAILED: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || skip "not root: slurmd and munged need root here (SlurmUser=root)"
for b in munged slurmctld slurmd sbatch sinfo squeue scancel; do
  command -v "$b" >/dev/null || skip "$b not found (apt-get install slurm-wlm; it brings munge)"
done

T=$(mktemp -d /tmp/fpqvar-slurm-XXXXXX)
cleanup() {
  for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/munged.pid"; do
    [[ -s "$f" ]] && kill "$(cat "$f")" 2>/dev/null
  done
  sleep 0.5
  for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/munged.pid"; do
    [[ -s "$f" ]] && kill -9 "$(cat "$f")" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
logs() { for f in "$T"/log/* "$T"/munge/munged.log; do [[ -f "$f" ]] && { echo "--- $f"; tail -n 20 "$f"; }; done >&2; }

mkdir -p "$T/state" "$T/spool" "$T/log" "$T/munge" "$T/work"
chmod 700 "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none && chmod 400 "$T/munge/munge.key"
munged --force --socket="$T/munge/munge.sock" --key-file="$T/munge/munge.key" --pid-file="$T/munge/munged.pid" \
  --log-file="$T/munge/munged.log" --seed-file="$T/munge/seed" || { logs; skip "munged did not start"; }

host=$(hostname -s)
# Two free TCP ports (bash's /dev/tcp probe: a refused connection means free).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo 0
}
cport=$(free_port); dport=$(free_port)
[[ "$cport" != 0 && "$dport" != 0 && "$cport" != "$dport" ]] || skip "no free ports"
cpus=$(nproc)
cat > "$T/slurm.conf" <<CONF
ClusterName=fpqvartest
SlurmctldHost=$host
SlurmctldPort=$cport
SlurmdPort=$dport
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=fpqvartest Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$T/slurm.conf"
slurmctld -f "$SLURM_CONF" || { logs; skip "slurmctld did not start"; }
slurmd -f "$SLURM_CONF" || { logs; skip "slurmd did not start"; }
up=0
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then up=1; break; fi
  sleep 0.5
done
[[ $up -eq 1 ]] || { logs; skip "the node did not become idle within 30 s"; }
echo "cluster up: $(sinfo -h -o '%P %T %N')"

cd "$T/work"
# 3 formats x 4 column counts = 12 points on var-d2 (no decoder: milliseconds a point).
cat > spec.json <<'JSON'
{"name": "slurmtest", "workload": {"model": "var-d2", "decoder": false},
 "parameters": [
   {"name": "format", "values": [
      {"label": "DFQ", "set": {"design": "vck190-fpqvar-w4a4", "recipe": "fpqvar-w4a4"}},
      {"label": "INT8", "set": {"design": "vck190-int8", "recipe": "int8-rtn"}},
      {"label": "INT4", "set": {"design": "vck190-int4", "recipe": "int4-rtn"}}]},
   {"key": "pe_array.cols", "values": [2, 4, 8, 16]}]}
JSON
# The first format's points run locally first: the submission must leave them out.
sed 's/"values": \[2, 4, 8, 16\]/"values": [2, 4]/' spec.json > part.json
"$fpqvar" sweep run part.json --db r.sqlite --jobs 1 || fail "local part run"
out=$("$fpqvar" sweep slurm spec.json --db r.sqlite --array-size 3 --wait 2>&1) || { echo "$out"; logs; fail "sweep slurm"; }
echo "$out"
grep -q "submitting 6 points as 3 array tasks" <<<"$out" || fail "expected 6 missing points in 3 tasks"
grep -q "r.sqlite: 12 of 12 points of sweep slurmtest recorded" <<<"$out" || fail "not every point collected"
ls r.sqlite.shards/submit-*/shard-{0,1,2}.sqlite >/dev/null || fail "a shard is missing"
# Every point once: the CSV report has 12 rows and 12 distinct keys.
"$fpqvar" sweep report r.sqlite --no-quality --csv all.csv >/dev/null || fail "report"
rows=$(($(wc -l < all.csv) - 1))
keys=$(tail -n +2 all.csv | cut -d, -f3 | sort -u | wc -l)
[[ $rows -eq 12 && $keys -eq 12 ]] || fail "expected 12 rows with 12 keys, got $rows rows, $keys keys"
! grep -q ",failed," all.csv || fail "a point failed: $(grep ,failed, all.csv)"
# Idempotent: collecting again adds nothing; submitting again has nothing to submit.
out=$("$fpqvar" sweep collect spec.json --db r.sqlite --clean) || fail "collect"
grep -q "^0 new points" <<<"$out" || fail "a second collect added points: $out"
[[ ! -d r.sqlite.shards ]] || fail "--clean left the shards"
out=$("$fpqvar" sweep slurm spec.json --db r.sqlite) || fail "second submit"
grep -q "nothing to submit" <<<"$out" || fail "a complete sweep was submitted again: $out"
echo "PASSED"
