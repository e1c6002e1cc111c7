#!/usr/bin/env bash
# What --validate-digests costs: one account and region, HOURS hours (default 24) of a trail
# with log file validation on (12 log files an hour of 100 records, an hourly signed digest:
# bench/digest_trail.py), printed by a fresh state without and then with --validate-digests,
# then an idle run of each. Prints wall and CPU time, S3 requests (moto's access log) and the
# difference per hour of logs. Against moto: request counts are exact, times are moto's pace.
#   bash bench/digests.sh [HOURS]
set -euo pipefail
cd "$(dirname "$0")/.."
hours=${1:-24}
work=$(mktemp -d)
moto_pid=
trap '[ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release --locked --quiet --bin ossec-cloudtrail
bin="$PWD/target/release/ossec-cloudtrail"
moto=$(bash scripts/setup-s3.sh | tail -n 1)
python="$(dirname "$moto")/python"
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
"$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
  "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.2
done
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset RUST_LOG AWS_PROFILE AWS_SESSION_TOKEN

echo "bench: writing $hours signed hours into moto" >&2
summary=$("$python" bench/digest_trail.py --endpoint "$endpoint" --bucket signed --keys "$work/keys.json" --hours "$hours")
requests() { grep -cE '"(GET|HEAD|PUT|POST|DELETE) ' "$work/moto.log" || true; }

# One run: wall, user+sys CPU and S3 requests into $wall $cpu $reqs; its stderr's last line in $said.
run() {
  local state=$1
  shift
  local before
  before=$(requests)
  /usr/bin/time -f '%e %U %S' -o "$work/time" "$bin" --bucket signed --endpoint-url "$endpoint" \
    --state "$work/$state" --max-lines 1000000 --max-rate 0 "$@" >"$work/out" 2>"$work/err" || true
  read -r wall user sys <"$work/time"
  cpu=$(python3 -c "import sys; print(f'{float(sys.argv[1]) + float(sys.argv[2]):.2f}')" "$user" "$sys")
  reqs=$(( $(requests) - before ))
  lines=$(wc -l <"$work/out")
  said=$(tail -n 1 "$work/err")
}
per_hour() { python3 -c "import sys; print(f'{(float(sys.argv[1]) - float(sys.argv[2])) * 1000 / float(sys.argv[3]):.1f}')" "$1" "$2" "$hours"; }

echo "ossec-cloudtrail digest verification, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD)"
echo "trail: $summary"
# Best of three fresh states each (the machine is shared), alternating the two.
least() { python3 -c "import sys; print(min(sys.argv[1:], key=float))" "$@"; }
walls_p=() cpus_p=() walls_c=() cpus_c=()
for i in 1 2 3; do
  run "plain$i"
  walls_p+=("$wall") cpus_p+=("$cpu") plain_reqs=$reqs plain_lines=$lines plain_said=$said
  run "checked$i" --validate-digests --digest-public-keys "$work/keys.json"
  walls_c+=("$wall") cpus_c+=("$cpu")
done
plain_wall=$(least "${walls_p[@]}") plain_cpu=$(least "${cpus_p[@]}")
wall=$(least "${walls_c[@]}") cpu=$(least "${cpus_c[@]}")
echo "without --validate-digests (best of 3): $plain_lines lines in $plain_wall s, CPU $plain_cpu s, $plain_reqs S3 requests"
echo "  $plain_said"
echo "with --validate-digests (best of 3):    $lines lines in $wall s, CPU $cpu s, $reqs S3 requests"
echo "  $said"
echo "cost per hour of logs (12 files, 1200 records): $(per_hour "$cpu" "$plain_cpu" ) ms of CPU, $(python3 -c "print(f'{($reqs - $plain_reqs) / $hours:.2f}')") S3 requests, $(per_hour "$wall" "$plain_wall") ms of wall time (moto's pace)"
run plain1
echo "idle run without: $wall s, CPU $cpu s, $reqs S3 requests"
run checked1 --validate-digests --digest-public-keys "$work/keys.json"
echo "idle run with:    $wall s, CPU $cpu s, $reqs S3 requests (the next digest is due an hour after the newest one's end: listed again each run while it is late)"
