#!/usr/bin/env bash
# The benchmark, one command: `bash bench/run.sh` (about 5-10 minutes on 2 cores).
#
# Generates a realistic CloudTrail bucket (3 accounts x 4 regions x 3 days, ~100,000 records,
# ~5% with 6-20 KB responseElements) as plain files and in a local S3 server (moto), then
# measures, in this one run and on these same files:
#   - the decode-and-flatten path (examples/decode_files.rs) against `zcat` and `zcat | jq -c`;
#   - the collector end to end from a fresh state (records/s, MB/s, peak RSS, S3 requests)
#     against a plain 8-thread GET loop over the same objects (the server's own ceiling);
#   - an idle run (wall time, S3 requests) and the state's size on disk over many runs;
#   - peak RSS on a bucket a third the size, and on one object of 1 GiB decompressed.
# The figures are printed and written to bench/last-run.txt. Not run by CI.
#
# Environment: BENCH_RECORDS (default 100000), BENCH_GIB (default 1), BENCH_DIR (scratch
# folder, default a new temporary one, removed at the end unless BENCH_KEEP=1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
records=${BENCH_RECORDS:-100000}
gib=${BENCH_GIB:-1}
work=${BENCH_DIR:-$(mktemp -d /tmp/ossec-cloudtrail-bench.XXXXXX)}
mkdir -p "$work"
report="$root/bench/last-run.txt"
moto_pid=
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP:-0}" != 1 ] && [ -z "${BENCH_DIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

say() { printf '%s\n' "$*" | tee -a "$work/report"; }
: >"$work/report"
# Peak RSS (KiB) and wall seconds of a command, from GNU time, into $rss_kib and $wall.
timed() {
  /usr/bin/time -f '%e %M' -o "$work/time" "$@"
  read -r wall rss_kib <"$work/time"
}
ratio() { python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }
per_s() { python3 -c "import sys; n, s = map(float, sys.argv[1:]); print(f'{n / max(s, 0.001):.0f}')" "$1" "$2"; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024:.1f}')" "$1"; }

echo "bench: building (release)" >&2
cargo build --release --locked --quiet --bin ossec-cloudtrail --example decode_files
bin="$root/target/release/ossec-cloudtrail"
decode="$root/target/release/examples/decode_files"
moto=$(bash scripts/setup-s3.sh | tail -n 1)
python="$(dirname "$moto")/python"
if ! command -v jq >/dev/null; then
  echo "bench: jq is missing; trying apt-get install jq" >&2
  (apt-get install -y -qq jq >/dev/null 2>&1 || sudo apt-get install -y -qq jq >/dev/null 2>&1) || true
fi

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
# moto logs one line per request (werkzeug's access log): the request counts come from it.
"$moto" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
  if "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then break; fi
  sleep 0.2
done
requests() { grep -cE '"(GET|HEAD|PUT|POST|DELETE) ' "$work/moto.log" || true; }
lists() { grep -cE '"GET [^ ]*list-type=2' "$work/moto.log" || true; }

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset RUST_LOG AWS_PROFILE AWS_SESSION_TOKEN

echo "bench: generating ~$records records into $work/files and moto" >&2
summary=$("$python" bench/bucket.py trail --root "$work/files" --bucket trail --endpoint "$endpoint" --records "$records")
read -r objects total big_records compressed decompressed first_day < <(
  "$python" -c 'import json, sys; s = json.loads(sys.argv[1]); print(s["objects"], s["records"], s["big_records"], s["compressed_bytes"], s["decompressed_bytes"], s["first_day"])' "$summary")
mapfile -t files < <(sed "s|^|$work/files/trail/|" "$work/files/keys.txt")

say "ossec-cloudtrail benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples bench || echo '+changes')"
say "bucket: $objects objects, $total records ($big_records with 6-20 KB responseElements), $(mib $((compressed / 1024))) MiB gzip, $(mib $((decompressed / 1024))) MiB JSON; 3 accounts x 4 regions x 3 days"
say ""

echo "bench: the decode path against zcat and jq" >&2
# Best of three for the quick ones: the machine is shared.
best() {
  local name=$1 best_wall=999999
  shift
  for _ in 1 2 3; do
    timed bash -c "$*"
    if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$wall" "$best_wall"; then best_wall=$wall; fi
  done
  wall=$best_wall
}
printf '%s\n' "${files[@]}" >"$work/files.txt"
best zcat 'xargs -a '"$work/files.txt"' zcat >/dev/null'
zcat_s=$wall
best decode "$decode"' $(cat '"$work/files.txt"') >/dev/null 2>'"$work/decode.err"
decode_s=$wall
if command -v jq >/dev/null; then
  timed bash -c 'xargs -a '"$work/files.txt"' zcat | jq -c ".Records[]" >/dev/null'
  jq_s=$wall
else
  jq_s=
fi
say "decode path (one thread, same files, output to /dev/null):"
say "  zcat alone:          $zcat_s s  $(per_s "$total" "$zcat_s") records/s  $(per_s $((decompressed / 1000000)) "$zcat_s") MB/s"
say "  decode_files:        $decode_s s  $(per_s "$total" "$decode_s") records/s  $(per_s $((decompressed / 1000000)) "$decode_s") MB/s  = $(ratio "$zcat_s" "$decode_s")x zcat (target >= 0.7)"
if [ -n "$jq_s" ]; then
  say "  zcat | jq -c:        $jq_s s  $(per_s "$total" "$jq_s") records/s; decode_files = $(ratio "$jq_s" "$decode_s")x (target >= 7)"
else
  say "  zcat | jq -c:        skipped, jq is not installed and could not be installed"
fi
say "  ($(tail -n 1 "$work/decode.err"))"
say ""

echo "bench: moto's ceiling, an 8-thread GET loop" >&2
loop_s=$("$python" - "$endpoint" "$work/files/keys.txt" <<'EOF'
import concurrent.futures, sys, time, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test",
                  aws_secret_access_key="test", config=Config(s3={"addressing_style": "path"}, max_pool_connections=8))
keys = open(sys.argv[2]).read().split()
start = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda k: s3.get_object(Bucket="trail", Key=k)["Body"].read(), keys))
print(f"{time.monotonic() - start:.2f}")
EOF
)
say "S3 server ceiling: 8-thread GET loop (boto3) over the $objects objects: $loop_s s = $(per_s "$objects" "$loop_s") objects/s"

state="$work/state"
run_collector() { # args...; stdout to $work/out, stderr to $work/err
  timed "$bin" --bucket trail --endpoint-url "$endpoint" --state "$state" \
    --only-logs-after "$first_day" --max-lines 100000000 "$@" >"$work/out" 2>"$work/err"
}
before=$(requests); before_lists=$(lists)
echo "bench: the collector from a fresh state" >&2
run_collector
fresh_s=$wall fresh_rss=$rss_kib
lines=$(wc -l <"$work/out")
out_bytes=$(wc -c <"$work/out")
fresh_requests=$(( $(requests) - before ))
fresh_lists=$(( $(lists) - before_lists ))
say "collector, fresh state: $lines lines of $total records in $fresh_s s = $(per_s "$lines" "$fresh_s") records/s, $(per_s $((decompressed / 1000000)) "$fresh_s") MB/s of JSON ($(per_s $((out_bytes / 1000000)) "$fresh_s") MB/s of lines), $(per_s "$objects" "$fresh_s") objects/s"
say "  = $(ratio "$loop_s" "$fresh_s")x the 8-thread GET loop (target >= 0.8); peak RSS $(mib "$fresh_rss") MiB; $fresh_requests S3 requests ($fresh_lists LIST, $((fresh_requests - fresh_lists)) GET)"
say "  stderr: $(tail -n 1 "$work/err")"

before=$(requests); before_lists=$(lists)
run_collector
idle_s=$wall
idle_requests=$(( $(requests) - before ))
say "collector, idle run (nothing new): $idle_s s, $idle_requests S3 requests ($(( $(lists) - before_lists )) LIST) for 12 partitions (target: <= 1 LIST per partition plus discovery, < 0.5 s)"
state_first=$(du -sk "$state" | cut -f1)
for _ in $(seq 20); do run_collector; done
state_after=$(du -sk "$state" | cut -f1)
say "state on disk: $(mib "$state_first") MiB after the first runs, $(mib "$state_after") MiB after 20 more idle runs (pruned to the look-back window)"
say ""

echo "bench: memory as the bucket grows" >&2
rm -rf "$state"
run_collector --accounts 111122223333
third_rss=$rss_kib
say "peak RSS: $(mib "$third_rss") MiB on a third of the bucket (one account), $(mib "$fresh_rss") MiB on all of it"

echo "bench: one object of $gib GiB decompressed" >&2
rm -rf "$work/files/big"
big=$("$python" bench/bucket.py big --root "$work/files" --bucket big --endpoint "$endpoint" --gib "$gib")
read -r big_records big_compressed big_decompressed < <(
  "$python" -c 'import json, sys; s = json.loads(sys.argv[1]); print(s["records"], s["compressed_bytes"], s["decompressed_bytes"])' "$big")
rm -rf "$work/big-state"
timed "$bin" --bucket big --endpoint-url "$endpoint" --state "$work/big-state" --max-lines 100000000 >/dev/null 2>"$work/big.err"
say "1 object, $(mib $((big_decompressed / 1024))) MiB JSON ($(mib $((big_compressed / 1024))) MiB gzip), $big_records records: $wall s = $(per_s "$big_records" "$wall") records/s, peak RSS $(mib "$rss_kib") MiB (target < 64 MiB)"
say "  stderr: $(tail -n 1 "$work/big.err")"

cp "$work/report" "$report"
echo "bench: figures written to $report" >&2
