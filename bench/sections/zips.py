"""Section 1b: the deployable zip of every function, as `cargo lambda build --release
--arm64 --output-format zip` makes it (the size-tuned release profile, for Graviton)."""

from __future__ import annotations

import zipfile

from .common import OUT_DIR, build_with_fallback, functions, not_ready

TARGET_BYTES = 3 * 1024 * 1024


def run() -> dict:
    rows = []
    for name in functions():
        why = not_ready(name)
        if why:
            rows.append({"function": name, "skipped": why})
            continue
        lambda_dir = OUT_DIR / "lambda"  # not target/lambda: other builds write there
        src, note = build_with_fallback(name, ["lambda", "build", "--release", "--arm64", "--output-format", "zip",
                                               "--lambda-dir", str(lambda_dir), "-p", name], f"zip-{name}")
        zpath = lambda_dir / name / "bootstrap.zip"
        if src is None or not zpath.exists():
            rows.append({"function": name, "skipped": f"arm64 build: {note or 'no bootstrap.zip'}"})
            continue
        with zipfile.ZipFile(zpath) as z:
            unzipped = sum(i.file_size for i in z.infolist())
        size = zpath.stat().st_size
        rows.append({"function": name, "zip_bytes": size, "unzipped_bytes": unzipped,
                     "meets": size <= TARGET_BYTES, "note": note})
    measured = [r for r in rows if "zip_bytes" in r]
    return {"status": "ran" if measured else "skipped", "rows": rows,
            "reason": "" if measured else "no function could be built for arm64"}
