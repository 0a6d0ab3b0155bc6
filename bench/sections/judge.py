"""Section 5: the canary judge on simulated traffic.

1. `shared/examples/judge_sim.rs` (release build): per cell (traffic 20, 100, 1,000
   requests a minute; splits 90/10 and 50/50; a heavy-tailed latency and one with
   requests pinned at the timeout; no change, a better version, latency x1.2 / x1.5 / x2,
   errors x2 / x10), `trials` runs of the real post-traffic gate through the in-memory
   CloudWatch that answers its queries from the simulated requests, and Kayenta's
   Mann-Whitney classifier on the same requests' per-period values. Deterministic under
   the seed.
2. End to end: one configuration (100 requests a minute, 90/10, latency x2, heavy tail)
   and its twin without a regression through the local AWS: the requests go in with
   `PutMetricData`, a real CodeDeploy deployment runs the post-traffic hook under
   `cargo lambda watch`, which reads them with `GetMetricData`."""

from __future__ import annotations

import json
import math
import random
import subprocess
import time

from .common import OUT_DIR, ROOT, build_with_fallback, not_ready, test_modules

SEED = 1


def _simulate(trials: int) -> dict:
    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "rollgate", "--features", "fakes", "--example", "judge_sim",
         "--", str(trials), str(SEED)],
        cwd=ROOT, capture_output=True, text=True, check=True)
    # The gate writes its EMF documents to stdout too: the result is the last line.
    return json.loads(out.stdout.strip().splitlines()[-1])


def _heavy_tail(factor: float):
    def draw() -> float:
        if random.random() < 0.05:
            value = 250.0 * math.exp(0.7 * random.gauss(0, 1))
        else:
            value = 50.0 * math.exp(0.5 * random.gauss(0, 1))
        return round(min(value * factor, 3000.0), 2)
    return draw


def _end_to_end(reps: int) -> dict:
    why = not_ready("post-traffic-hook")
    if why:
        return {"status": "skipped", "reason": f"post-traffic-hook is {why}"}
    base, note = build_with_fallback("post-traffic-hook", ["build", "-p", "post-traffic-hook", "-p", "example-app"],
                                     "judge-build")
    if base is None:
        return {"status": "skipped", "reason": f"post-traffic-hook (debug build) {note}"}
    harness, helpers = test_modules(base)
    import sys
    sys.path.insert(0, str(base / "infra" / "local"))
    from traffic import lambda_traffic

    env = {"ROLLGATE_TOPIC_ARN": helpers.TOPIC_ARN, "ROLLGATE_POLICY_PREFIX": helpers.POLICY_PREFIX,
           "ROLLGATE_SELF_FUNCTION": helpers.POST_HOOK_FUNCTION}
    # The tests' clock: a CodeDeploy minute lasts 0.2 s, so a 30-minute canary lasts 6 s;
    # 25 requests every 0.25 s at a 10 % canary give the new version about 60 requests.
    policy = {"version": 1, "post_traffic": {
        "bake_minutes": 0.02, "poll_seconds": 1, "period_seconds": 1, "ingestion_delay_seconds": 0,
        "canary": {"warmup_seconds": 0, "min_periods": 3}}}
    config = "CodeDeployDefault.LambdaCanary10Percent30Minutes"
    runs: dict[str, list[dict]] = {"latency x2": [], "none": []}
    with harness.LocalAws(env=env, minute_seconds=0.2, hook_timeout_seconds=120,
                          log_dir=OUT_DIR / "logs" / "judge") as aws:
        helpers.bootstrap(aws)
        find = helpers.topic_inbox(aws, "rollgate-bench-judge")
        for rep in range(reps):
            for name, factor in (("latency x2", 2.0), ("none", 1.0)):
                app = helpers.make_app(aws, policy=policy, config=config)
                behaviour = {"1": {"errors": 0.001, "latency": _heavy_tail(1.0)},
                             "2": {"errors": 0.001, "latency": _heavy_tail(factor)}}
                with lambda_traffic(aws, app.name, app.alias, behaviour, per_tick=25):
                    dep = helpers.deploy(aws, app, helpers.appspec(app, after_hook=helpers.POST_HOOK_FUNCTION))
                    info = helpers.wait_deployment(aws, dep, timeout=180)
                body = json.loads(find({"deployment": dep, "component": "post-traffic-hook"}, 60)["Message"])
                latency = next(c for c in body["checks"] if c["name"] == "canary.latency")
                runs[name].append({"status": info["status"], "latency": latency["outcome"],
                                   "new_requests": latency["actual"].get("test", {}).get("n_new")})
    return {"status": "ran", "note": note, "reps": reps, "config": config, "runs": runs}


def run(trials: int = 500, e2e_reps: int = 3) -> dict:
    t0 = time.monotonic()
    try:
        sim = _simulate(trials)
    except (subprocess.CalledProcessError, ValueError, IndexError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        return {"status": "skipped", "reason": f"judge_sim did not run: {detail.strip()[-400:]}"}
    sim_seconds = round(time.monotonic() - t0, 1)
    try:
        e2e = _end_to_end(e2e_reps)
    except Exception as e:  # noqa: BLE001 - reported, the simulation still stands
        e2e = {"status": "skipped", "reason": f"{type(e).__name__}: {e}"}
    return {"status": "ran", "reason": "", "simulation": sim, "simulation_seconds": sim_seconds,
            "end_to_end": e2e}
