"""Turn bench results (bench/results.json) into docs/benchmarks.md."""

from __future__ import annotations

from sections.coldstart import DIAG_FLOOR, DIAG_ONE_ROOT, TARGET_MS, TARGET_RATIO_BOTO3, TARGET_RSS_MIB

MIB = 1024 * 1024


def _f(x, nd=1) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def _x(r) -> str:
    if r is None:
        return ""
    return f"{r:.0f}x" if r >= 10 else f"{r:.2f}x"


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _skip(lines: list[str], sec: dict | None, what: str) -> bool:
    if sec is not None and sec.get("note") and sec["status"] == "ran":
        lines += [f"Note: {sec['note']}.", ""]
    if sec is None:
        lines += [f"Not run (left out with `--only`).", ""]
        return True
    if sec["status"] != "ran":
        lines += [f"Skipped: {sec.get('reason') or what}.", ""]
        return True
    return False


def _cold(lines: list[str], sec: dict | None, misses: list[str]) -> None:
    lines += ["## 1. Cold start: process start to the first Runtime API `/next`", ""]
    if _skip(lines, sec, "no function could be measured"):
        return
    lines += [
        f"{sec['runs']} runs per implementation and function (after {sec['warmup']} unrecorded warm-up runs), "
        "interleaved in rotating order. Each process gets the environment Lambda gives a function "
        "(region, dummy credentials, `AWS_LAMBDA_*`, an empty `HOME`) and an `AWS_ENDPOINT_URL` on a "
        "loopback port nothing listens on; the Runtime API is a local server that notes when `/next` "
        "arrives, reads the process's `VmHWM` (and where its resident pages are, from `smaps`) at that "
        "moment and holds the request.",
        "",
        "- **rust**: the function's own release binary (`cargo build --release`, the workspace's "
        "size-tuned profile: `opt-level = \"z\"`, fat LTO, one codegen unit, `panic = \"abort\"`), built "
        "for **x86_64** on this machine. Lambda runs the arm64 build; the numbers here are for the "
        "same code on another instruction set.",
        "- **python**: `bench/init_boto3.py` — `boto3.client(...)` for each client the function's "
        "`main` builds (with those its client bundles build, such as the hooks' CodeDeploy, SSM and "
        "SNS), then `GET /next` with `http.client`.",
        "- **node**: `bench/init_sdkv3.cjs` — the matching AWS SDK v3 `...Client` objects, then "
        "`GET /next` with `node:http`.",
        f"- **{DIAG_ONE_ROOT}** (diagnostic): the same binary with `SSL_CERT_FILE` naming a bundle of one "
        "certificate instead of the system's (about 150): what reading the trusted roots costs.",
        f"- **{DIAG_FLOOR}** (diagnostic): `bench/floor`, built with the same profile, asks for `/next` "
        "and nothing else: spawn, `exec`, dynamic loading, libc and the Rust runtime, which every "
        "function pays before its own work.",
        "",
        "Trusted roots: the functions read one CA bundle, the first of `SSL_CERT_FILE`, "
        "`/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem`, `/etc/pki/tls/certs/ca-bundle.crt`, "
        "`/etc/ssl/certs/ca-certificates.crt`, `/etc/ssl/cert.pem` that exists, and parse it once at "
        "start (the SDK parses it again when the first AWS call builds the one shared connector). "
        "Lambda's `provided.al2023` is Amazon Linux 2023, whose `ca-certificates` package keeps "
        "Fedora's layout: the first of those paths (and the second, a link to it). That was not read off "
        "the image itself here (this machine reaches no container registry); this machine's bundle is "
        "Debian's.",
        "",
        "| function | clients | impl | median ms | p90 ms | peak RSS MiB (median) | time vs rust | RSS vs rust |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in sec["rows"]:
        for impl, m in row["impls"].items():
            if "error" in m:
                lines.append(f"| {row['function']} | {', '.join(row['clients'])} | {impl} | failed: "
                             f"{m['error'][:120]} | | | | |")
                continue
            rt = _x(m.get("ratio_time"))
            rr = _x(m.get("ratio_rss"))
            lines.append(f"| {row['function']} | {', '.join(row['clients'])} | {impl} | {_f(m['median_ms'])} | "
                         f"{_f(m['p90_ms'])} | {_f(m['median_rss_mib'])} | {rt} | {rr} |")
    for s in sec.get("skipped", []):
        lines.append(f"| {s['function']} | | | skipped: {s['reason']} | | | | |")
    for row in sec["rows"]:
        if row.get("note"):
            lines += ["", f"{row['function']}: {row['note']}."]
    if not sec.get("node"):
        lines += ["", "The Node side was not measured: `bench/node_modules` is missing (`npm ci` failed)."]
    _memory(lines, sec)
    lines += ["", "Targets:", "", f"| function | init <= {TARGET_MS:g} ms median | peak RSS <= {TARGET_RSS_MIB:g} MiB | "
              f">= {TARGET_RATIO_BOTO3:g}x faster than boto3 |",
              "|---|---|---|---|"]
    for row in sec["rows"]:
        r = row["impls"].get("rust", {})
        if "median_ms" not in r:
            continue
        py = row["impls"].get("python", {})
        t_ok, m_ok = r["median_ms"] <= TARGET_MS, r["median_rss_mib"] <= TARGET_RSS_MIB
        ratio = py.get("ratio_time")
        x_ok = ratio is not None and ratio >= TARGET_RATIO_BOTO3
        lines.append(f"| {row['function']} | {_mark(t_ok)} ({_f(r['median_ms'])} ms) | {_mark(m_ok)} "
                     f"({_f(r['median_rss_mib'])} MiB) | {_mark(x_ok)} ({_f(ratio, 0)}x) |")
        _cold_misses(row, t_ok, m_ok, x_ok, ratio, misses)


def _memory(lines: list[str], sec: dict) -> None:
    """Where the Rust start's resident pages are at `/next`, and the sections that put them there."""
    rows = [r for r in sec["rows"] if r["impls"].get("rust", {}).get("rss_parts_mib")]
    if not rows:
        return
    lines += ["", "Where each Rust start's resident memory is at `/next` (medians, MiB; `smaps`), and the "
              "executable's sections that decide it (`.text`: code, of which the kernel maps each touched "
              "page's neighbours too, 64 KiB around a fault; `.rela.dyn`: the relocations the dynamic loader "
              "reads at start; `.data.rel.ro`: pointers it writes then, resident and private):", "",
              "| function | executable's file pages | shared libraries | anonymous | `.text` MiB | `.rela.dyn` KiB | `.data.rel.ro` KiB |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    floor = None
    for row in rows:
        p, elf = row["impls"]["rust"]["rss_parts_mib"], row.get("elf", {})
        lines.append(f"| {row['function']} | {_f(p['binary'])} | {_f(p['libraries'])} | {_f(p['anonymous'])} | "
                     f"{_f(elf.get('.text', 0) / MIB)} | {elf.get('.rela.dyn', 0) / 1024:.0f} | "
                     f"{elf.get('.data.rel.ro', 0) / 1024:.0f} |")
        floor = floor or row["impls"].get(DIAG_FLOOR, {}).get("rss_parts_mib")
    if floor:
        lines += ["", f"The floor binary, for scale: {_f(floor['binary'])} MiB of its own pages, "
                  f"{_f(floor['libraries'])} MiB of shared libraries, {_f(floor['anonymous'])} MiB anonymous."]


def _cold_misses(row: dict, t_ok: bool, m_ok: bool, x_ok: bool, ratio, misses: list[str]) -> None:
    r, py = row["impls"]["rust"], row["impls"].get("python", {})
    floor = row["impls"].get(DIAG_FLOOR, {}).get("median_ms")
    one_root = row["impls"].get(DIAG_ONE_ROOT, {}).get("median_ms")
    roots_ms = r["median_ms"] - one_root if one_root is not None else None
    split = (f"Of its {_f(r['median_ms'])} ms, {_f(floor)} ms is the floor any Rust binary pays here "
             f"(`{DIAG_FLOOR}`) and {_f(roots_ms)} ms reading the system's trusted roots (the "
             f"`{DIAG_ONE_ROOT}` row); the rest, {_f(r['median_ms'] - floor - (roots_ms or 0))} ms, builds "
             f"the {len(row['clients'])} SDK clients ({', '.join(row['clients'])}), the Tokio runtime and "
             "the logger. ") if floor is not None else ""
    if not t_ok:
        misses.append(f"**{row['function']}: init {_f(r['median_ms'])} ms > 10 ms.** {split}")
    if not m_ok:
        p, elf = r.get("rss_parts_mib", {}), row.get("elf", {})
        relocs = (elf.get(".rela.dyn", 0) + elf.get(".data.rel.ro", 0)) / MIB
        misses.append(
            f"**{row['function']}: peak RSS {_f(r['median_rss_mib'])} MiB > 8 MiB.** Measured at `/next`: "
            f"{_f(p.get('binary'))} MiB are the executable's own file pages (its `.text` is "
            f"{_f(elf.get('.text', 0) / MIB)} MiB; the kernel maps 64 KiB around each page touched, so "
            f"code spread over the binary is mostly resident), {_f(p.get('libraries'))} MiB shared "
            f"libraries and {_f(p.get('anonymous'))} MiB anonymous memory (heap, stacks, the relocated "
            "pointers). The lever not taken: the executable is position-independent, so the "
            f"dynamic loader reads `.rela.dyn` and writes all of `.data.rel.ro` at start ({_f(relocs)} MiB "
            "together, both resident); a `-no-pie` link needs neither but loses address-space "
            "randomisation of the executable, and packed relative relocations (`-z pack-relative-relocs`) need glibc "
            "2.36 where Lambda's provided.al2023 has 2.34.")
    if not x_ok and ratio is not None:
        need = py["median_ms"] / TARGET_RATIO_BOTO3
        misses.append(
            f"**{row['function']}: {ratio:.0f}x faster than boto3, short of {TARGET_RATIO_BOTO3:g}x.** "
            f"{TARGET_RATIO_BOTO3:g}x would take {_f(need)} ms against boto3's {_f(py['median_ms'])} ms. {split}"
            + (f"Even the floor alone is {py['median_ms'] / floor:.0f}x faster than boto3 here." if floor else ""))


def _zip(lines: list[str], sec: dict | None, misses: list[str]) -> None:
    lines += ["## 1b. Deployment package size", "",
              "`cargo lambda build --release --arm64 --output-format zip -p <function>` (the artifact "
              "`sam deploy` ships; arm64, as deployed).", ""]
    if _skip(lines, sec, "no function could be built for arm64"):
        return
    lines += ["| function | zip KiB | unzipped KiB | <= 3 MiB |", "|---|---:|---:|---|"]
    for r in sec["rows"]:
        if "zip_bytes" not in r:
            lines.append(f"| {r['function']} | skipped: {r['skipped']} | | |")
            continue
        lines.append(f"| {r['function']} | {r['zip_bytes'] / 1024:.0f} | {r['unzipped_bytes'] / 1024:.0f} | "
                     f"{_mark(r['meets'])} |")
        if not r["meets"]:
            misses.append(f"**{r['function']}: zip {r['zip_bytes'] / MIB:.2f} MiB > 3 MiB.** Each AWS SDK "
                          "crate brings its whole generated operation set; dropping unused SDK features and "
                          "clients, or calling the few needed operations through one signed HTTP client, "
                          "would shrink it.")
    for r in sec["rows"]:
        if r.get("note"):
            lines += ["", f"{r['function']}: {r['note']}."]
    lines.append("")


def _rollback(lines: list[str], sec: dict | None, misses: list[str]) -> None:
    lines += ["## 2. Rollback reaction", ""]
    if _skip(lines, sec, "alarm-rollback is not available"):
        return
    build = sec.get("build", "debug")
    target_ms = sec.get("reaction_target_ms", 100)
    lines += [
        "A release v1 -> v2 succeeds on the emulator; its CodeDeploy state-change event is handed to "
        "alarm-rollback (which records it in its ledger); then an EventBridge `CloudWatch Alarm State "
        f"Change` naming the function's alias is delivered by `Invoke`. The function runs under `cargo "
        f"lambda watch` ({build} build) with `AWS_ENDPOINT_URL` pointing at a recording proxy in front of "
        "the emulator, which counts and timestamps every AWS call. The function process is already "
        "running (warm): this is the reaction, not a cold start.", "",
        "| measure | value |", "|---|---:|",
        f"| alarm delivery (Invoke sent) to `UpdateAlias` arriving, median of {sec['reps']} | {_f(sec['reaction_ms'])} ms |",
        f"| whole invocation | {_f(sec['invoke_ms'])} ms |",
        f"| of which the delivery path: an alarm going to OK (ignored, no AWS call), whole invocation | "
        f"{_f(sec.get('delivery_overhead_ms'))} ms |",
        f"| AWS calls before `UpdateAlias` | {sec['calls_to_update']:.0f} |",
        f"| AWS calls in the whole invocation | {sec['calls_total']:.0f} |",
        f"| minimum possible calls before `UpdateAlias` | {sec['minimum_calls']} ({sec['minimum_round_trips']} round trips) |",
        f"| alias back on v1 afterwards | {'yes' if sec['alias_back_on_1'] else 'no'} |", "",
        f"Calls before the rollback, in order: {', '.join(f'`{o}`' for o in sec['ops_before'])}.",
        f"After it: {', '.join(f'`{o}`' for o in sec['ops_after']) or 'none'}.", "",
        f"The minimum is {sec['minimum_calls']}: the ledger read that says which version was good and "
        "`GetAlias` for where the alias points and its `RevisionId` (independent: one round trip "
        "together), then the exactly-once claim, a conditional `PutItem`; `UpdateAlias` carries the "
        "`RevisionId`. The policy's rollback settings and the function's group were recorded with the "
        "release, so neither is read here (docs/rollback.md, \"The critical path\").", ""]
    extra = sec["calls_to_update"] - sec["minimum_calls"]
    if extra > 0:
        misses.append(
            f"**Rollback path: {sec['calls_to_update']:.0f} AWS calls before `UpdateAlias` where "
            f"{sec['minimum_calls']} would do:** {', '.join(f'`{o}`' for o in sec['ops_before'])}.")
    if build != "release" or sec["reaction_ms"] > target_ms:
        misses.append(
            f"**Rollback reaction: {_f(sec['reaction_ms'])} ms on a {build} build, target <= {target_ms} ms "
            "on a release build.**")


def _redrive(lines: list[str], sec: dict | None, misses: list[str]) -> None:
    lines += ["## 3. Redrive throughput", ""]
    if _skip(lines, sec, "dlq-redrive is not available"):
        return
    if "ratios" not in sec:  # a result of the older, single-network section
        lines += ["(an older run measured one unmodelled network only; rerun `make bench --only redrive`)", ""]
        return
    lat = sec["latency"]
    model = "sqs" in sec  # SQS of the modelled network: bench/sqs_model.py, not the local AWS
    modelled = (f"**Modelled network**: SQS is `bench/sqs_model.py`, in-memory queues that answer every call "
                f"after a log-normal draw (median {lat['median_ms']} ms, p99 {lat['p99_ms']} ms), concurrent "
                "callers side by side, as SQS does (the function reaches it through `AWS_ENDPOINT_URL_SQS`); "
                "this is what a user sees on AWS.") if model else (
                f"**Modelled network**: every SQS call waits a log-normal draw (median {lat['median_ms']} ms, "
                f"p99 {lat['p99_ms']} ms) before the emulator answers it.")
    lines += [
        f"{sec['messages']:,} messages (JSON bodies of about 220 bytes) moved from a DLQ to its source "
        f"queue by dlq-redrive ({sec.get('build', 'debug')} build under `cargo lambda watch`, "
        "16 workers, invoked until it returns no continuation) and by `bench/redrive_boto3.py`, the "
        f"receive-10 / send-batch / delete-batch loop, single-threaded and with 8 threads. {modelled} "
        "**Unmodelled**: SQS is the local AWS (moto behind rollgate's IAM and validation) as fast as it "
        "goes, where its own CPU (one Python process) is the limit for every client.", "",
        "| network | implementation | seconds | messages/s | own CPU ms per 1,000 | SQS side's CPU ms per 1,000 | moved | left |",
        "|---|---|---:|---:|---:|---:|---:|---:|"]
    names = {"rust": "dlq-redrive", "boto3": "boto3 loop", "boto3x8": "boto3 loop, 8 threads"}
    for network, impls in sec["results"].items():
        for impl, r in impls.items():
            lines.append(f"| {network} | {names.get(impl, impl)} | {_f(r['seconds'])} | {_f(r['msgs_per_s'], 0)} | "
                         f"{_f(r['cpu_ms_per_1000'], 0)} | {_f(r['emulator_cpu_ms_per_1000'], 0)} | "
                         f"{r['moved']} | {r['left']} |")
    m, u = sec["ratios"]["modelled"], sec["ratios"]["unmodelled"]
    lines += ["", f"Modelled network: dlq-redrive moves **{m['boto3']:.1f}x** the messages per second of the "
              f"boto3 loop (target >= 5x) and **{m['boto3x8']:.1f}x** the 8-thread loop (target >= 1.5x). "
              f"Unmodelled: {u['boto3']:.1f}x and {u['boto3x8']:.1f}x.", ""]
    rm = sec["results"]["modelled"]
    if m["boto3"] < 5 or m["boto3x8"] < 1.5:
        busiest = max(r["emulator_cpu_ms_per_1000"] for r in rm.values())
        misses.append(
            f"**Redrive on the modelled network: {m['boto3']:.1f}x the boto3 loop (target 5x), "
            f"{m['boto3x8']:.1f}x the 8-thread loop (target 1.5x).** The SQS side spent up to "
            f"{busiest / 1000:.1f} s of CPU per 1,000 messages, against "
            f"{rm['rust']['cpu_ms_per_1000'] / 1000:.2f} s in dlq-redrive: where the SQS side is busy, "
            "it, not the network, sets the pace, and a faster client cannot show.")


GATE_TARGET = 1.25  # issue 17: ten smoke tests within 1.25x the wall time of one


def _gate(lines: list[str], sec: dict | None, misses: list[str]) -> None:
    lines += ["## 4. Gate wall time: ten smoke tests against one", ""]
    if _skip(lines, sec, "pre-traffic-hook is not available"):
        return
    lines += [
        f"Real CodeDeploy deployments on the emulator (AllAtOnce, as `tests/test_pre_traffic.py` makes "
        f"them), the hook and the example app under `cargo lambda watch --concurrency "
        f"{sec['watch_concurrency']}` ({sec.get('build', 'debug')} builds). Every smoke test invokes the new version with "
        f"`{{\"sleep_ms\": {sec['sleep_ms']}}}`. {sec['reps']} deployments per scenario after one warm-up "
        "each, interleaved; medians. *Gate* is the hook's own `duration_ms` from its SNS decision; "
        "*deployment* is CreateDeployment until the status is final (includes the emulator's hook "
        "dispatch and polling every 20 ms).", "",
        "| scenario | policy concurrency | succeeded | gate ms | vs one | deployment ms | vs one |",
        "|---|---|---:|---:|---:|---:|---:|"]
    for r in sec["rows"]:
        lines.append(f"| {r['label']} | {r['concurrency']} | {r['succeeded']}/{r['n']} | {_f(r['gate_ms'], 0)} | "
                     f"{_f(r.get('gate_ratio'), 2) + 'x' if r.get('gate_ratio') else ''} | {_f(r['wall_ms'], 0)} | "
                     f"{_f(r.get('wall_ratio'), 2) + 'x' if r.get('wall_ratio') else ''} |")
    lines.append("")
    for r in sec["rows"][1:]:
        ratio = r.get("wall_ratio")
        if ratio is not None and ratio > GATE_TARGET:
            one = sec["rows"][0]
            misses.append(
                f"**Gate, {r['label']}: {ratio:.2f}x the wall time of one (target <= {GATE_TARGET}x).** "
                f"Ten smoke tests of {sec['sleep_ms']} ms in one wave took "
                f"{_f(r['wall_ms'] - one['wall_ms'], 0)} ms more than one: nine more `Invoke` calls "
                "through the emulator (one Python process) and `cargo lambda watch`, each forwarded "
                "and answered in turn there, while the hook sends them together.")


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def judge_targets(sim: dict) -> list[tuple[str, str, bool]]:
    """The judge's targets (issue "canary judge, rebuilt") checked on the simulation:
    (target, measured, met)."""
    cells = sim["cells"]
    out = []
    no_reg = [c for c in cells if c["regression"] == "none"]
    worst = max(no_reg, key=lambda c: c["rollgate"]["fail"])
    out.append(("false-fail rate <= 5 % in every no-regression cell",
                f"worst {_pct(worst['rollgate']['fail'])} ({worst['per_minute']:.0f}/min {worst['split']} "
                f"{worst['shape']} {worst['change']})", worst["rollgate"]["fail"] <= 0.05))
    for change, need in (("latency x2", 0.9), ("latency x1.5", 0.8)):
        sel = [c for c in cells if c["per_minute"] == 100 and c["split"] == "90/10" and c["change"] == change]
        low = min(c["rollgate"]["fail"] for c in sel)
        out.append((f"100 req/min, 90/10: >= {need * 100:.0f} % of {change} slowdowns fail",
                    f"{_pct(low)} (worst shape)", low >= need))
    sel = [c for c in cells if c["per_minute"] == 1000 and c["split"] == "90/10" and c["change"] == "errors x10"]
    low = min(c["rollgate"]["fail"] for c in sel)
    out.append((">= 95 % of 10x error-rate regressions fail (0.1 % -> 1 %, 1,000 req/min, 90/10)",
                _pct(low), low >= 0.95))
    regressions = [c for c in cells if c["regression"] in ("latency", "errors")]
    passed = max(c["rollgate"]["pass"] for c in regressions)
    out.append(("a regression is never passed where the data lack the power (Pass <= 5 %)",
                f"worst {_pct(passed)}", passed <= 0.05))
    weaker = [c for c in regressions if c["rollgate"]["fail"] < c["kayenta"]["fail"]]
    looser = [c for c in no_reg if c["rollgate"]["fail"] > max(c["kayenta"]["fail"], 0.05)]
    out.append(("at least as powerful as Kayenta's classifier in every cell, at the same or a lower false-fail rate",
                f"{len(weaker)} cells weaker, {len(looser)} looser", not weaker and not looser))
    return out


def _judge(lines: list[str], sec: dict | None, misses: list[str]) -> None:
    lines += ["## 5. The canary judge on simulated traffic", ""]
    if _skip(lines, sec, "the simulation could not run"):
        return
    sim = sec["simulation"]
    lines += [
        f"`shared/examples/judge_sim.rs`, {sim['trials']} trials per cell, seed {sim['seed']} "
        f"({sec['simulation_seconds']:.0f} s). Each trial runs the real post-traffic gate "
        "(`hook::run_gate` with `PostTraffic`, the defaults, no bake) through "
        "`post_traffic::fakes::FakeMetrics`, which answers every query the gate makes (sums, sample "
        "counts, percentiles, trimmed counts) from the trial's simulated requests, as CloudWatch "
        f"computes them. A {sim['canary_minutes']}-minute canary (the judge leaves out its first minute); "
        f"Poisson arrivals; base error rate {sim['base_error_rate'] * 100:.1f} %; tolerance "
        f"{sim['tolerance_pct']:.0f} %. Latency shapes: *HeavyTail*, log-normal around 50 ms with 5 % of "
        "requests from a log-normal around 250 ms; *Timeouts*, log-normal around 80 ms with 2 % of requests "
        "pinned at the 3 s timeout (ties). A regression multiplies every latency of the new version (capped "
        "at the timeout) or its error rate; *better* is latency x0.8 and errors x0.5.",
        "",
        "Kayenta's Mann-Whitney classifier, implemented from its documentation and source, judges the same "
        "requests as Kayenta would see them: one value per minute (p99 latency, error rate), a two-sided "
        "Mann-Whitney test with the 95 % confidence interval of the location shift (Hodges-Lehmann), "
        "*High* (a failure) when the interval's lower end exceeds a quarter of the estimate and the mean "
        "ratio reaches the allowed increase (1.2). It has no Inconclusive: what it does not fail, it passes.",
        "",
        "Each cell is judged on the check it is about: latency changes on `canary.latency`, error changes "
        "on `canary.error_rate`, and the cells without a regression on both (a Fail of either is a false "
        "fail). F: failed, P: passed, I: inconclusive (the data cannot tell; `on_no_data` decides at the "
        "end of the bake).",
        "",
        "| req/min | split | shape | change | rollgate F | P | I | Kayenta F | P |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|"]
    for c in sim["cells"]:
        r, k = c["rollgate"], c["kayenta"]
        lines.append(f"| {c['per_minute']:.0f} | {c['split']} | {c['shape']} | {c['change']} | {_pct(r['fail'])} | "
                     f"{_pct(r['pass'])} | {_pct(r['inconclusive'])} | {_pct(k['fail'])} | {_pct(k['pass'])} |")
    lines += ["", "| target | measured | |", "|---|---|---|"]
    for target, measured, ok in judge_targets(sim):
        lines.append(f"| {target} | {measured} | {_mark(ok)} |")
        if not ok:
            misses.append(f"**Judge: {target}: {measured}.**")
    lines.append("")
    e2e = sec.get("end_to_end") or {}
    lines += ["### End to end through the local AWS", ""]
    if e2e.get("status") != "ran":
        lines += [f"Skipped: {e2e.get('reason', 'not run')}.", ""]
        return
    lines += [
        f"{e2e['reps']} deployments each, `{e2e['config']}` on the tests' clock (a CodeDeploy minute lasts "
        "0.2 s): `infra/local/traffic.py` puts the requests of both versions, shared by the alias's weights, "
        "with `PutMetricData` every 0.25 s (HeavyTail as above); the post-traffic hook under `cargo lambda "
        "watch` reads them with `GetMetricData` (trimmed counts included) and reports to CodeDeploy.", "",
        "| change | deployments | Failed | canary.latency fail | new requests judged (median) |",
        "|---|---:|---:|---:|---:|"]
    for name, runs in e2e["runs"].items():
        n = sorted(r["new_requests"] or 0 for r in runs)
        lines.append(f"| {name} | {len(runs)} | {sum(r['status'] == 'Failed' for r in runs)} | "
                     f"{sum(r['latency'] == 'fail' for r in runs)} | {n[len(n) // 2] if n else 0:.0f} |")
    lines.append("")


def _summary(sections: dict) -> list[str]:
    rows = []
    cold = sections.get("cold") or {}
    for row in cold.get("rows", []) if cold.get("status") == "ran" else []:
        r, py = row["impls"].get("rust", {}), row["impls"].get("python", {})
        if "median_ms" in r:
            f = row["function"]
            rows.append((f"{f}: init <= {TARGET_MS:g} ms median", f"{_f(r['median_ms'])} ms",
                         r["median_ms"] <= TARGET_MS))
            rows.append((f"{f}: peak RSS <= {TARGET_RSS_MIB:g} MiB", f"{_f(r['median_rss_mib'])} MiB",
                         r["median_rss_mib"] <= TARGET_RSS_MIB))
            if "ratio_time" in py:
                rows.append((f"{f}: init >= {TARGET_RATIO_BOTO3:g}x faster than boto3", _x(py["ratio_time"]),
                             py["ratio_time"] >= TARGET_RATIO_BOTO3))
    zips = sections.get("zip") or {}
    for r in zips.get("rows", []) if zips.get("status") == "ran" else []:
        if "zip_bytes" in r:
            rows.append((f"{r['function']}: zip <= 3 MiB", f"{r['zip_bytes'] / MIB:.2f} MiB", r["meets"]))
    rb = sections.get("rollback") or {}
    if rb.get("status") == "ran":
        rows.append(("rollback path: <= 3 AWS calls before `UpdateAlias`", f"{rb['calls_to_update']:.0f}",
                     rb["calls_to_update"] <= rb["minimum_calls"]))
        build = rb.get("build", "debug")
        rows.append(("rollback reaction <= 100 ms, release build", f"{_f(rb['reaction_ms'])} ms ({build})",
                     build == "release" and rb["reaction_ms"] <= rb.get("reaction_target_ms", 100)))
    red = sections.get("redrive") or {}
    if red.get("status") == "ran" and "ratios" in red:
        m = red["ratios"]["modelled"]
        rows.append(("redrive, modelled network: >= 5x a boto3 loop", _x(m["boto3"]), m["boto3"] >= 5))
        rows.append(("redrive, modelled network: >= 1.5x a boto3 loop with 8 threads", _x(m["boto3x8"]),
                     m["boto3x8"] >= 1.5))
    gate = sections.get("gate") or {}
    for r in gate.get("rows", [])[1:] if gate.get("status") == "ran" else []:
        if r.get("wall_ratio") is not None:
            rows.append((f"gate: {r['label']} <= {GATE_TARGET}x the wall time of one", f"{r['wall_ratio']:.2f}x",
                         r["wall_ratio"] <= GATE_TARGET))
    judge = sections.get("judge") or {}
    if judge.get("status") == "ran":
        rows += [(f"judge: {t}", m, ok) for t, m, ok in judge_targets(judge["simulation"])]
    out = ["## Targets at a glance", "", "| target | measured | |", "|---|---:|---|"]
    out += [f"| {t} | {v} | {_mark(ok)} |" for t, v, ok in rows]
    not_run = [k for k, sec in sections.items() if sec["status"] != "ran"]
    if not_run:
        out += ["", f"Not measured in this run: {', '.join(not_run)} (the sections below say why)."]
    return out + [""]


def render(res: dict) -> str:
    m, v = res["machine"], res["versions"]
    limit = 0.5 * (m["nproc"] or 1)
    # A section measured on a loaded host is flagged, also when an `--only` run kept it.
    busy = [k for k, sec in res["sections"].items()
            if max(sec.get("load") or [max(m["load_start"][0], m["load_end"][0])]) > limit]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (bench/bench.py). Do not edit by hand. -->",
        "",
        f"Measured {res['date']} in {res['total_seconds']:.0f} s. Benchmarks are not tests: nothing "
        "here can fail CI, and `make test` does not run them.",
        "",
        "## Machine and versions",
        "",
        f"- {m['nproc']} CPUs: {m['cpu']}; {m['mem_gib']} GiB memory; Linux {m['kernel']} ({m['arch']})",
        f"- load average (1 min) {m['load_start'][0]:.1f} at the start, {m['load_end'][0]:.1f} at the end",
        f"- {v['rustc']}; {v['cargo-lambda']}",
        f"- Python {v['python']}, boto3 {v['boto3']} (botocore {v['botocore']})",
        f"- Node {v['node']}, AWS SDK for JavaScript v3 {v['@aws-sdk/client-lambda']}",
        "",
    ]
    if busy:
        lines += [
            "> **The absolute numbers of " + ", ".join(busy) + " come from a busy machine**: a shared "
            "host whose load average exceeded half its CPU count while they ran (other builds and test "
            "suites). Only the ratios "
            "are meaningful — each compares implementations measured side by side, interleaved, in the "
            "same run, so the noise hit all of them alike.",
            "",
        ]
    misses: list[str] = []
    sections = res["sections"]
    older = {k: v["date"] for k, v in sections.items() if v.get("date") and v["date"] != res["date"]}
    if older:
        lines += ["> This run measured " + ", ".join(k for k in sections if k not in older) + "; kept from "
                  "earlier runs (`--only`): " + ", ".join(f"{k} ({d})" for k, d in older.items())
                  + ". The machine line above describes this run.", ""]
    lines += _summary(sections)
    _cold(lines, sections.get("cold"), misses)
    lines.append("")
    _zip(lines, sections.get("zip"), misses)
    _rollback(lines, sections.get("rollback"), misses)
    _redrive(lines, sections.get("redrive"), misses)
    _gate(lines, sections.get("gate"), misses)
    _judge(lines, sections.get("judge"), misses)
    lines += ["## Missed targets", ""]
    if misses:
        lines += [f"- {x}" for x in misses]
    else:
        lines.append("Every target that could be measured in this run was met.")
    not_run = [k for k, s in sections.items() if s["status"] != "ran"]
    if not_run:
        lines += ["", f"Not measured in this run (see the sections): {', '.join(not_run)}."]
    lines += ["", "## Reproduce", "", "```sh", "make bench   # writes this file; raw numbers in bench/results.json",
              "```", "", "Section timings of this run: "
              + ", ".join(f"{k} {s['seconds']:.0f} s" for k, s in sections.items()) + ".", ""]
    return "\n".join(lines)
