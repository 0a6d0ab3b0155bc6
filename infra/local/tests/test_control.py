"""Control endpoints, env-var configuration and an unreachable watch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import EMULATOR, control, free_port, make_function, Clients


def test_reset_clears_records(aws, fake_watch, emulator):
    make_function(aws, "echo", versions=1)
    fake_watch.handlers["echo"] = lambda p, c: (200, {})
    aws.lam.invoke(FunctionName="echo:live")
    assert len(control(emulator, "invocations")) == 1
    assert control(emulator, "reset", method="POST") == {"status": "reset"}
    assert control(emulator, "invocations") == []
    assert control(emulator, "events") == []
    with pytest.raises(urllib.error.HTTPError) as err:
        control(emulator, "deployments/d-NOTREAL00/hooks")
    assert err.value.code == 404


def test_env_configuration_and_unreachable_watch(tmp_path):
    port = free_port()
    env = {**os.environ, "ROLLGATE_EMU_PORT": str(port),
           "ROLLGATE_EMU_LAMBDA_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    log = open(tmp_path / "emu.log", "w")
    proc = subprocess.Popen([sys.executable, str(EMULATOR)], env=env, stderr=log, stdout=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/_rollgate/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        aws = Clients(url)
        make_function(aws, "nowhere", versions=1)
        with pytest.raises(ClientError) as err:
            aws.lam.invoke(FunctionName="nowhere:live")
        assert err.value.response["Error"]["Code"] == "ServiceException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        records = control(url, "invocations")
        assert records[0]["status"] == "unreachable"
        # Event invokes are accepted before the watch is contacted, as Lambda queues them.
        assert aws.lam.invoke(FunctionName="nowhere:live", InvocationType="Event")["StatusCode"] == 202
    finally:
        proc.send_signal(2)  # SIGINT exits cleanly too
        assert proc.wait(timeout=10) == 0
    assert "listening on" in (tmp_path / "emu.log").read_text()
