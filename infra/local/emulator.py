#!/usr/bin/env python3
"""rollgate's local AWS emulator: moto plus the patches in rollgate_emulator/.

    python infra/local/emulator.py --host 127.0.0.1 --port 5001 \
        --lambda-endpoint http://127.0.0.1:9000 --minute-seconds 60 \
        --hook-timeout-seconds 3600

Every flag can also come from ROLLGATE_EMU_<FLAG> (e.g. ROLLGATE_EMU_PORT).
Serves until SIGTERM/SIGINT.  Logs one line per notable action to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollgate_emulator import apply_patches, cloudwatch, control, iam, validation  # noqa: E402
from rollgate_emulator.state import Settings, log  # noqa: E402


def parse_args(argv: list[str] | None = None) -> Settings:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=env("ROLLGATE_EMU_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("ROLLGATE_EMU_PORT", "5001")))
    parser.add_argument("--lambda-endpoint",
                        default=env("ROLLGATE_EMU_LAMBDA_ENDPOINT", "http://127.0.0.1:9000"),
                        help="base URL of `cargo lambda watch`")
    parser.add_argument("--minute-seconds", type=float,
                        default=float(env("ROLLGATE_EMU_MINUTE_SECONDS", "60")),
                        help="real seconds one deployment-config minute lasts")
    parser.add_argument("--hook-timeout-seconds", type=float,
                        default=float(env("ROLLGATE_EMU_HOOK_TIMEOUT_SECONDS", "3600")),
                        help="how long a lifecycle hook may take to report its status")
    args = parser.parse_args(argv)
    return Settings(args.host, args.port, args.lambda_endpoint.rstrip("/"),
                    args.minute_seconds, args.hook_timeout_seconds)


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    # Per-request access lines drown the lifecycle log humans read in `make demo`.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    apply_patches(settings)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    # Faults first (control), then AWS's model constraints, then IAM (the functions' own
    # roles), then CloudWatch's CBOR, then moto.
    app = control.wrap(validation.wrap(iam.wrap(cloudwatch.wrap(DomainDispatcherApplication(create_backend_app)))))
    server = make_server(settings.host, settings.port, app, threaded=True)

    def stop(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("listening on http://%s:%s (lambda endpoint %s, minute=%gs, hook timeout=%gs)",
             settings.host, server.server_port, settings.lambda_endpoint,
             settings.minute_seconds, settings.hook_timeout_seconds)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
