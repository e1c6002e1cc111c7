#!/usr/bin/env bash
# The main job against a local demo bucket, for a first look on a fresh machine:
# starts a local S3 server (moto, installed by setup-s3.sh), loads the bundled sample
# CloudTrail files into it under the real CloudTrail key layout (dated today, so the default
# start date, yesterday, takes them), then runs the collector twice: the first run prints
# every record as one JSON line, the second prints nothing because the state remembers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

moto=$(bash scripts/setup-s3.sh | tail -n 1)
echo "demo: building ossec-cloudtrail (first time: a few minutes)" >&2
cargo build --quiet
bin="$root/target/debug/ossec-cloudtrail"

port=$("$root/.venv-s3/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
state=$(mktemp -d)
trap 'kill $moto_pid 2>/dev/null; rm -rf "$state"' EXIT

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# The demo server is local: a proxy of this machine's environment must not take its requests
# (boto3 and the collector both honour these, the lowercase form first).
export NO_PROXY="127.0.0.1${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1${no_proxy:+,$no_proxy}"
endpoint="http://127.0.0.1:$port"
"$root/.venv-s3/bin/python" - "$endpoint" "$root/samples" <<'PY'
import boto3, datetime, glob, gzip, os, sys, time
endpoint, samples = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint)
for _ in range(100):
    try:
        s3.create_bucket(Bucket="demo-trail")
        break
    except Exception:
        time.sleep(0.1)
now = datetime.datetime.now(datetime.timezone.utc)
for i, path in enumerate(sorted(glob.glob(os.path.join(samples, "*.json")))):
    account, region, _ = os.path.basename(path).split("_", 2)
    stamp = (now - datetime.timedelta(minutes=5 * (10 - i))).strftime("%Y%m%dT%H%MZ")
    key = (f"AWSLogs/{account}/CloudTrail/{region}/{now:%Y/%m/%d}/"
           f"{account}_CloudTrail_{region}_{stamp}_demo{i:04d}.json.gz")
    with open(path, "rb") as f:
        s3.put_object(Bucket="demo-trail", Key=key, Body=gzip.compress(f.read()),
                      ContentEncoding="gzip")
    print(f"demo: loaded s3://demo-trail/{key}", file=sys.stderr)
# A digest file, which the collector must skip.
s3.put_object(Bucket="demo-trail",
              Key=f"AWSLogs/111122223333/CloudTrail-Digest/us-east-1/{now:%Y/%m/%d}/"
                  f"111122223333_CloudTrail-Digest_us-east-1_demo_{now:%Y%m%dT%H%M%SZ}.json.gz",
              Body=gzip.compress(b'{"digestStartTime":"x"}'))
PY

echo >&2
echo "demo: first run: ossec-cloudtrail --bucket demo-trail --endpoint-url $endpoint --state $state" >&2
"$bin" --bucket demo-trail --endpoint-url "$endpoint" --state "$state"
echo >&2
echo "demo: second run, same command: nothing new to print" >&2
"$bin" --bucket demo-trail --endpoint-url "$endpoint" --state "$state"
