#!/usr/bin/env python3
"""Writes a signed CloudTrail trail into an S3 server for bench/digests.sh: HOURS hours of
one account and region, FILES log files an hour (CloudTrail delivers about one every five
minutes) of RECORDS records each, and for each hour a digest file as CloudTrail writes it
(SHA-256 of each log file's content, chained by signature, SHA256withRSA over the documented
signing string, hex in x-amz-meta-signature), signed with a key made here; then the public
keys file that --digest-public-keys reads (what `aws cloudtrail list-public-keys` prints).

  digest_trail.py --endpoint URL --bucket NAME --keys FILE [--hours 24] [--files 12] [--records 100]

Uses the virtualenv of scripts/setup-s3.sh (boto3, and cryptography, which moto needs).
"""

import argparse
import base64
import datetime
import gzip
import hashlib
import json
import random

import boto3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ACCOUNT = "111122223333"
REGION = "us-east-1"
FINGERPRINT = "0123456789abcdef0123456789abcdef"


def record(rng, when, i):
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                         "accountId": ACCOUNT, "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": "alice"},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": rng.choice(["DescribeInstances", "RunInstances", "StopInstances"]),
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.45",
        "userAgent": "aws-cli/2.22.4 Python/3.12.6 Linux/6.1",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-0%016x" % rng.getrandbits(64)}]}},
        "responseElements": None,
        "requestID": "%032x" % rng.getrandbits(128),
        "eventID": "%032x" % rng.getrandbits(128),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--files", type=int, default=12)
    p.add_argument("--records", type=int, default=100)
    a = p.parse_args()
    rng = random.Random(15)
    s3 = boto3.client("s3", endpoint_url=a.endpoint, region_name=REGION)
    s3.create_bucket(Bucket=a.bucket)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    with open(a.keys, "w") as f:
        json.dump({"PublicKeyList": [{"Value": base64.b64encode(der).decode(), "Fingerprint": FINGERPRINT,
                                       "ValidityStartTime": "2026-01-01T00:00:00+00:00",
                                       "ValidityEndTime": "2027-01-01T00:00:00+00:00"}]}, f)
    yesterday = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)
    start = datetime.datetime(yesterday.year, yesterday.month, yesterday.day, tzinfo=datetime.timezone.utc)
    previous = None
    logs = 0
    for hour in range(a.hours):
        begin = start + datetime.timedelta(hours=hour)
        end = begin + datetime.timedelta(hours=1)
        listed = []
        for n in range(a.files):
            when = begin + datetime.timedelta(minutes=5 * n + 4)
            body = json.dumps({"Records": [record(rng, when, i) for i in range(a.records)]},
                              separators=(",", ":")).encode()
            day = when.strftime("%Y/%m/%d")
            k = (f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{day}/{ACCOUNT}_CloudTrail_{REGION}_"
                 f"{when.strftime('%Y%m%dT%H%MZ')}_{rng.getrandbits(64):016x}.json.gz")
            s3.put_object(Bucket=a.bucket, Key=k, Body=gzip.compress(body))
            listed.append({"s3Bucket": a.bucket, "s3Object": k, "hashValue": hashlib.sha256(body).hexdigest(),
                           "hashAlgorithm": "SHA-256"})
            logs += 1
        stamp = end.strftime("%Y%m%dT%H%M%SZ")
        dkey = (f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{end.strftime('%Y/%m/%d')}/"
                f"{ACCOUNT}_CloudTrail-Digest_{REGION}_bench_{REGION}_{stamp}.json.gz")
        iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
        doc = {"awsAccountId": ACCOUNT, "digestStartTime": iso(begin), "digestEndTime": iso(end),
               "digestS3Bucket": a.bucket, "digestS3Object": dkey, "digestPublicKeyFingerprint": FINGERPRINT,
               "digestSignatureAlgorithm": "SHA256withRSA",
               "previousDigestS3Bucket": a.bucket if previous else None,
               "previousDigestS3Object": previous[0] if previous else None,
               "previousDigestSignature": previous[1] if previous else None,
               "logFiles": listed}
        text = json.dumps(doc).encode()
        to_sign = "%s\n%s/%s\n%s\n%s" % (iso(end), a.bucket, dkey, hashlib.sha256(text).hexdigest(),
                                         previous[1] if previous else "null")
        signature = key.sign(to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()).hex()
        s3.put_object(Bucket=a.bucket, Key=dkey, Body=gzip.compress(text),
                      Metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"})
        previous = (dkey, signature)
    print(json.dumps({"hours": a.hours, "log_files": logs, "records": logs * a.records, "digests": a.hours}))


if __name__ == "__main__":
    main()
