"""Run a fuzz campaign with atheris: each target in turn on one core, for N minutes or N inputs each.

    PYTHONPATH=$PWD python -m tests.fuzz.campaign --minutes 10            # every target, 10 min each
    PYTHONPATH=$PWD python -m tests.fuzz.campaign --runs 10000 image audio

Each target runs in its own process under libFuzzer (through atheris, the `dev` extra) with a 1 GB
RSS limit (-rss_limit_mb=1024) and a per-input timeout, starting from tests/fuzz/corpus/<target>
(copied, so the committed corpus stays small). Every input's outcome is counted: loaded, refused
(a one-line UserError), refused_sqlite (sessions: SQLite's own error, one line at the CLI), other
exception (a finding: its input is saved), and libFuzzer's own verdicts: crash (a native crash),
hang (over the timeout) and over 1 GB (RSS limit). Findings are written to tests/fuzz/findings/
<target>/ (not committed); a fixed finding is copied into the corpus folder so the test run replays
it. A summary table is printed at the end and written to tests/fuzz/findings/summary.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).parent
FINDINGS = HERE / "findings"
OUTCOMES = ("loaded", "refused", "refused_sqlite", "other_exception", "crash", "hang", "over_1GB")
MAX_LEN = {"image": 65536, "audio": 65536, "manifest": 16384, "bundle": 65536, "bundle_schema": 512,
           "session": 65536}
TIMEOUT_S = 20


def _child(target: str, stats_path: Path, libfuzzer_args: list[str]) -> None:
    """Inside the fuzzing process: instrument the app, count outcomes, save unexpected exceptions."""
    import atheris

    with atheris.instrument_imports(include=["app"]):
        # The targets import the app lazily: import every module they reach here, inside the
        # instrumentation, or libFuzzer gets no coverage and mutates blindly.
        import app.data.manifest
        import app.modalities
        import app.qmf.bundle
        import app.qmf.manifest_schema
        import app.qmf.model
        import app.review.export
        import app.review.session  # noqa: F401
        from tests.fuzz import targets
    function = targets.TARGETS[target]
    if target in ("bundle", "bundle_schema"):
        targets._base()  # build the small model once, before the clock and the RSS baseline
    counts = dict.fromkeys(OUTCOMES, 0)
    found = FINDINGS / target
    found.mkdir(parents=True, exist_ok=True)
    seen = 0
    stats_file = open(stats_path, "w")  # noqa: SIM115 - kept open: libFuzzer ends the process with exit()

    def flush() -> None:
        stats_file.seek(0)
        stats_file.write(json.dumps(counts))
        stats_file.truncate()
        stats_file.flush()

    def one_input(data: bytes) -> None:
        nonlocal seen
        try:
            counts[function(data)] += 1
        except Exception as exc:  # noqa: BLE001 - every unexpected exception is a finding, counted and kept
            counts["other_exception"] += 1
            digest = hashlib.sha1(data).hexdigest()[:16]
            (found / f"exception-{digest}").write_bytes(data)
            (found / f"exception-{digest}.txt").write_text("".join(traceback.format_exception(exc)))
        seen += 1
        flush()  # every input: libFuzzer may end the process at any moment (limits, -runs)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    try:
        atheris.Fuzz()
    finally:
        flush()


def _run_target(target: str, minutes: float | None, runs: int | None) -> dict[str, int]:
    work = Path(tempfile.mkdtemp(prefix=f"qmf-fuzz-{target}-"))
    corpus = work / "corpus"
    shutil.copytree(HERE / "corpus" / target, corpus)
    stats = work / "stats.json"
    artifacts = FINDINGS / target
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [str(corpus), "-rss_limit_mb=1024", f"-timeout={TIMEOUT_S}", f"-max_len={MAX_LEN[target]}",
            f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
    if minutes is not None:
        args.append(f"-max_total_time={int(minutes * 60)}")
    if runs is not None:
        args.append(f"-runs={runs}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])}
    before = {p.name for p in artifacts.iterdir()}
    started = time.time()
    with open(work / "log.txt", "wb") as log:
        proc = subprocess.run([sys.executable, "-m", "tests.fuzz.campaign", "--child", target, str(stats), *args],
                              env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    counts = dict.fromkeys(OUTCOMES, 0)
    if stats.exists():
        counts.update(json.loads(stats.read_text()))
    new = [p.name for p in artifacts.iterdir() if p.name not in before]
    counts["crash"] += sum(1 for n in new if n.startswith(("crash-", "deadly")))
    counts["hang"] += sum(1 for n in new if n.startswith("timeout-"))
    counts["over_1GB"] += sum(1 for n in new if n.startswith("oom-"))
    counts["seconds"] = round(time.time() - started)
    counts["exit_code"] = proc.returncode
    counts["log"] = str(work / "log.txt")
    return counts


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        _child(argv[1], Path(argv[2]), argv[3:])
        return 0
    from tests.fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"targets (default all): {', '.join(TARGETS)}")
    parser.add_argument("--minutes", type=float, help="per target")
    parser.add_argument("--runs", type=int, help="inputs per target")
    args = parser.parse_args(argv)
    if args.minutes is None and args.runs is None:
        parser.error("give --minutes or --runs")
    names = args.targets or list(TARGETS)
    results = {}
    for name in names:
        print(f"fuzzing {name} ...", flush=True)
        results[name] = _run_target(name, args.minutes, args.runs)
        r = results[name]
        print(f"  {sum(r[o] for o in OUTCOMES):,} inputs in {r['seconds']} s: "
              + ", ".join(f"{o} {r[o]:,}" for o in OUTCOMES), flush=True)
    FINDINGS.mkdir(exist_ok=True)
    (FINDINGS / "summary.json").write_text(json.dumps(results, indent=1))
    print(f"{'target':<14}" + "".join(f"{o:>16}" for o in OUTCOMES))
    for name, r in results.items():
        print(f"{name:<14}" + "".join(f"{r[o]:>16,}" for o in OUTCOMES))
    bad = sum(results[n][o] for n in results for o in ("other_exception", "crash", "hang", "over_1GB"))
    print(f"findings: {bad}" + (f" (inputs under {FINDINGS})" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
