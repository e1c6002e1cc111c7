#!/usr/bin/env python3
"""Generates a realistic CloudTrail bucket for the benchmark, as plain files and (optionally)
uploaded into an S3 server.

  bucket.py trail --root DIR --bucket NAME [--endpoint URL] [--records N]
      several accounts, regions and days; about N records (default 100000), about 5% of them
      with a 6-20 KB responseElements; writes DIR/NAME/KEY and uploads each object.
  bucket.py big --root DIR --bucket NAME [--endpoint URL] [--gib 1]
      one object of about GIB GiB once decompressed.
  bucket.py small --root DIR --bucket NAME [--accounts 10] [--regions 12] [--days 2] [--per-day 288]
      quiet partitions: one record per object, one object every 5 minutes of each day (up to
      --per-day of them) in each account and region; files only, keys in DIR/NAME-keys.txt.

Prints one JSON summary line on stdout: objects, records, compressed and decompressed bytes.
Deterministic (seeded), so runs compare.
"""

import argparse
import concurrent.futures
import datetime
import gzip
import json
import os
import random
import sys
import uuid

ACCOUNTS = ["111122223333", "444455556666", "777788889999"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2"]
DAYS = 3
EVENTS = [
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("ec2.amazonaws.com", "RunInstances", False),
    ("ec2.amazonaws.com", "StopInstances", False),
    ("s3.amazonaws.com", "GetBucketAcl", True),
    ("s3.amazonaws.com", "PutObject", False),
    ("iam.amazonaws.com", "ListRoles", True),
    ("sts.amazonaws.com", "AssumeRole", True),
    ("kms.amazonaws.com", "Decrypt", True),
    ("lambda.amazonaws.com", "Invoke", False),
    ("signin.amazonaws.com", "ConsoleLogin", False),
    ("cloudtrail.amazonaws.com", "LookupEvents", True),
    ("logs.amazonaws.com", "PutLogEvents", False),
]
AGENTS = [
    "aws-cli/2.22.4 Python/3.12.6 Linux/6.1.119 exe/x86_64.amzn.2023",
    "Boto3/1.35.40 md/Botocore#1.35.40 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.6",
    "console.amazonaws.com",
    "aws-sdk-go-v2/1.32.2 os/linux lang/go#1.23.2 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.187.0",
    "AWS Internal",
]


def hexid(rng, n):
    return format(rng.getrandbits(4 * n), "0%dx" % n)


def instance(rng, region):
    iid = "i-0" + hexid(rng, 16)
    return {
        "instanceId": iid,
        "imageId": "ami-0" + hexid(rng, 16),
        "instanceState": {"code": 16, "name": "running"},
        "privateDnsName": "ip-10-%d-%d-%d.%s.compute.internal"
        % (rng.randrange(256), rng.randrange(256), rng.randrange(256), region),
        "instanceType": rng.choice(["t3.micro", "m5.large", "c6i.xlarge", "r6g.2xlarge"]),
        "launchTime": 1732000000000 + rng.randrange(10**9),
        "placement": {"availabilityZone": region + rng.choice("abc"), "tenancy": "default"},
        "subnetId": "subnet-0" + hexid(rng, 16),
        "vpcId": "vpc-0" + hexid(rng, 16),
        "privateIpAddress": "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(256)),
        "groupSet": {"items": [{"groupId": "sg-0" + hexid(rng, 16), "groupName": "web-%d" % rng.randrange(99)}]},
        "tagSet": {"items": [{"key": "Name", "value": "svc-%s" % hexid(rng, 6)}, {"key": "team", "value": rng.choice(["core", "data", "web", "ops"])}]},
    }


def big_response(rng, region):
    """A DescribeInstances-like response of 6-20 KB."""
    want = rng.randrange(6_000, 20_000)
    items = []
    size = 0
    while size < want:
        item = instance(rng, region)
        items.append(item)
        size += len(json.dumps(item, separators=(",", ":")))
    return {"requestId": str(uuid.UUID(int=rng.getrandbits(128))), "reservationSet": {"items": [{"reservationId": "r-0" + hexid(rng, 16), "ownerId": "111122223333", "instancesSet": {"items": items}}]}}


def record(rng, account, region, when, big):
    source, name, read_only = rng.choice(EVENTS)
    role = rng.random() < 0.6
    if role:
        identity = {
            "type": "AssumedRole",
            "principalId": "AROA" + hexid(rng, 16).upper() + ":session-" + hexid(rng, 6),
            "arn": "arn:aws:sts::%s:assumed-role/%s/session-%s" % (account, rng.choice(["deploy", "ReadOnly", "lambda-exec"]), hexid(rng, 6)),
            "accountId": account,
            "accessKeyId": "ASIA" + hexid(rng, 16).upper(),
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROA" + hexid(rng, 16).upper(), "arn": "arn:aws:iam::%s:role/deploy" % account, "accountId": account, "userName": "deploy"},
                "attributes": {"creationDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "mfaAuthenticated": "false"},
            },
        }
    else:
        user = rng.choice(["alice", "bob", "ci-bot", "carol"])
        identity = {"type": "IAMUser", "principalId": "AIDA" + hexid(rng, 16).upper(), "arn": "arn:aws:iam::%s:user/%s" % (account, user), "accountId": account, "accessKeyId": "AKIA" + hexid(rng, 16).upper(), "userName": user}
    rec = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": (when + datetime.timedelta(seconds=rng.randrange(300))).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": "DescribeInstances" if big else name,
        "awsRegion": region,
        "sourceIPAddress": "%d.%d.%d.%d" % (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(256)),
        "userAgent": rng.choice(AGENTS),
        "requestParameters": {"maxResults": 1000, "filterSet": {}} if big else ({"bucketName": "data-" + hexid(rng, 8), "key": "in/%s.parquet" % hexid(rng, 12)} if rng.random() < 0.7 else None),
        "responseElements": big_response(rng, region) if big else (None if read_only else {"return": True}),
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": True if big else read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "%s.%s.amazonaws.com" % (source.split(".")[0], region)},
    }
    if rng.random() < 0.04:
        rec["errorCode"] = "AccessDenied"
        rec["errorMessage"] = "User is not authorized to perform this operation"
    return rec


def s3_client(endpoint):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
    )


def trail(args):
    rng = random.Random(20261123)
    today = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    partitions = [(a, r) for a in ACCOUNTS for r in REGIONS]
    # CloudTrail delivers about every 5 minutes per partition; record counts per file vary.
    per_object = 100
    objects_per_day = max(1, args.records // (per_object * len(partitions) * DAYS))
    plan = []
    for days_ago in range(DAYS - 1, -1, -1):
        day = today - datetime.timedelta(days=days_ago)
        for account, region in partitions:
            minutes = sorted(rng.sample(range(0, 24 * 60, 5), objects_per_day))
            for m in minutes:
                plan.append((account, region, day + datetime.timedelta(minutes=m)))
    total_target = args.records
    counts = [rng.randrange(10, 2 * per_object - 10) for _ in plan]
    scale = total_target / sum(counts)
    counts = [max(1, round(c * scale)) for c in counts]
    summary = {"objects": 0, "records": 0, "big_records": 0, "compressed_bytes": 0, "decompressed_bytes": 0, "keys": []}
    uploads = []
    for (account, region, when), n in zip(plan, counts):
        recs = []
        for _ in range(n):
            big = rng.random() < 0.05
            summary["big_records"] += big
            recs.append(record(rng, account, region, when, big))
        body = json.dumps({"Records": recs}, separators=(",", ":")).encode()
        data = gzip.compress(body, compresslevel=6, mtime=0)
        key = "AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%sZ_%s.json.gz" % (
            account, region, when.strftime("%Y/%m/%d"), account, region, when.strftime("%Y%m%dT%H%M"), hexid(rng, 16))
        write(args, key, data)
        uploads.append((key, data))
        summary["objects"] += 1
        summary["records"] += n
        summary["compressed_bytes"] += len(data)
        summary["decompressed_bytes"] += len(body)
        summary["keys"].append(key)
    summary["first_day"] = (today - datetime.timedelta(days=DAYS - 1)).strftime("%Y-%m-%d")
    upload(args, uploads)
    with open(os.path.join(args.root, "keys.txt"), "w") as f:
        f.write("\n".join(summary.pop("keys")) + "\n")
    print(json.dumps(summary))


def big(args):
    rng = random.Random(7)
    today = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    account, region = ACCOUNTS[0], REGIONS[0]
    # A pool of distinct records, repeated with fresh ids: generating a gibibyte record by
    # record in Python would take longer than the whole rest of the benchmark.
    pool = [json.dumps(record(rng, account, region, today, rng.random() < 0.05), separators=(",", ":")) for _ in range(2000)]
    key = "AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%sT0000Z_%s.json.gz" % (
        account, region, today.strftime("%Y/%m/%d"), account, region, today.strftime("%Y%m%d"), "0" * 16)
    path = os.path.join(args.root, args.bucket, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    target = int(args.gib * (1 << 30))
    written = records = 0
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b'{"Records":[')
        written += 12
        while written < target:
            chunk = []
            for text in pool:
                # Each record's eventID (a uuid) made unique by its number.
                chunk.append(text.replace('"eventID":"', '"eventID":"%012d-' % records, 1))
                records += 1
            blob = ("," if written > 12 else "") + ",".join(chunk)
            data = blob.encode()
            out.write(data)
            written += len(data)
        out.write(b"]}")
        written += 2
    size = os.path.getsize(path)
    if args.endpoint:
        s3 = s3_client(args.endpoint)
        try:
            s3.create_bucket(Bucket=args.bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        s3.upload_file(path, args.bucket, key)
    print(json.dumps({"objects": 1, "records": records, "compressed_bytes": size, "decompressed_bytes": written, "key": key}))


SMALL_REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1",
                 "eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"]


def small(args):
    rng = random.Random(20261124)
    today = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    accounts = ["%012d" % (210000000000 + 7919 * i) for i in range(args.accounts)]
    regions = SMALL_REGIONS[: args.regions]
    keys = []
    compressed = decompressed = 0
    for days_ago in range(args.days - 1, -1, -1):
        day = today - datetime.timedelta(days=days_ago)
        for account in accounts:
            for region in regions:
                for i in range(args.per_day):
                    when = day + datetime.timedelta(minutes=5 * (i % 288))
                    body = json.dumps({"Records": [record(rng, account, region, when, False)]}, separators=(",", ":")).encode()
                    data = gzip.compress(body, compresslevel=6, mtime=0)
                    key = "AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%sZ_%s.json.gz" % (
                        account, region, when.strftime("%Y/%m/%d"), account, region, when.strftime("%Y%m%dT%H%M"), hexid(rng, 16))
                    write(args, key, data)
                    keys.append(key)
                    compressed += len(data)
                    decompressed += len(body)
    with open(os.path.join(args.root, args.bucket + "-keys.txt"), "w") as f:
        f.write("\n".join(keys) + "\n")
    print(json.dumps({"objects": len(keys), "records": len(keys), "compressed_bytes": compressed, "decompressed_bytes": decompressed,
                      "first_day": (today - datetime.timedelta(days=args.days - 1)).strftime("%Y-%m-%d"),
                      "accounts": accounts, "regions": regions}))


def write(args, key, data):
    path = os.path.join(args.root, args.bucket, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def upload(args, uploads):
    if not args.endpoint:
        return
    s3 = s3_client(args.endpoint)
    s3.create_bucket(Bucket=args.bucket)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kd: s3.put_object(Bucket=args.bucket, Key=kd[0], Body=kd[1]), uploads))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["trail", "big", "small"])
    parser.add_argument("--root", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--endpoint")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--regions", type=int, default=12)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--per-day", type=int, default=288)
    args = parser.parse_args()
    {"trail": trail, "big": big, "small": small}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
