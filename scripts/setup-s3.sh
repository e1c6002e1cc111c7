#!/usr/bin/env bash
# Installs the local S3 server that the tests and the demo talk to: moto's server, from PyPI,
# in a virtualenv inside the checkout (.venv-s3/). Safe to run again: it does nothing when the
# server is already installed. Prints the path of moto_server on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-s3"
if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/python" -c 'import boto3, moto' 2>/dev/null; then
  echo "setup-s3: installing moto's S3 server into $venv (one time, about a minute)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' 'boto3>=1.34'
fi
echo "$venv/bin/moto_server"
