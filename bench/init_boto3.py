"""Cold-start stand-in written the way a Python Lambda would be: build the boto3 clients
the Rust function builds (names in argv), then ask the Runtime API for the first event.

The bench harness times this process from spawn to the arrival of that request."""

import http.client
import os
import sys

import boto3

# The Rust SDK's crate names where boto3's service names differ.
BOTO3_NAME = {"eventbridge": "events"}

clients = [boto3.client(BOTO3_NAME.get(name, name)) for name in sys.argv[1:]]

host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
conn = http.client.HTTPConnection(host, int(port or 80))
conn.request("GET", "/2018-06-01/runtime/invocation/next")
conn.getresponse().read()
