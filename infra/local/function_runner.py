#!/usr/bin/env python3
"""Starts a function binary the way Lambda starts it: with temporary credentials of the
function's own role in its environment, and the function's configured variables that
`cargo lambda watch`'s one shared environment leaves unset.

`cargo lambda watch` runs each function as `cargo run --bin <name>`; the harness makes
this script cargo's runner for the host target (CARGO_TARGET_<TRIPLE>_RUNNER), so cargo
calls `function_runner.py <binary> <args>`. The script asks the local AWS for
credentials for the binary (AWS_LAMBDA_FUNCTION_NAME, which watch sets to the binary
name) at ROLLGATE_CREDENTIALS_ENDPOINT and replaces itself with the binary. The local
AWS then authorises every call the function makes against its role's policies
(rollgate_emulator/iam.py). Should the credentials not come, the function keeps the
placeholder key it was started with, which the local AWS refuses: it never runs as an
administrator.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: function_runner.py <binary> [args...]")
    binary = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    endpoint = os.environ.get("ROLLGATE_CREDENTIALS_ENDPOINT")
    if binary and endpoint:
        url = f"{endpoint}?binary={urllib.parse.quote(binary)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                creds = json.load(response)
            os.environ.update(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                              AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                              AWS_SESSION_TOKEN=creds["Token"])
            # The function's own environment where watch's shared one says nothing.
            for name, value in (creds.get("Environment") or {}).items():
                os.environ.setdefault(name, value)
        except (OSError, ValueError, KeyError) as err:
            print(f"function_runner: no credentials for {binary} from {endpoint}: {err}", file=sys.stderr)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
