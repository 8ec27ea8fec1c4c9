"""The Linux installer's size against issue 13's limits and against what it was cut from, in one run.

    .venv/bin/python benchmarks/installer_size_bench.py [--dist dist] [--zstd]

Reads the artefacts of `packaging/build_linux.sh` (no build here): the `.deb` (file size, its
`Installed-Size`) against the limits 60 MiB / 250 MiB; the folder build's largest parts; the slimmed
files next to the originals they were made from (ICU's data library and the Python runtime, read from
this Python's PySide6 wheel and lib folder); with `--zstd`, the same tree packed with zstd -12 (the
previous default compression) next to the xz -9 `.deb`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

from sizes import report  # noqa: E402  (packaging/sizes.py: the largest parts of a folder build)

MIB = 1048576
DEB_LIMIT_MIB = 60
INSTALLED_LIMIT_MIB = 250


def _line(name: str, value: float, peer: float, peer_name: str) -> str:
    return f"{name:<34} {value:8.1f} MiB   {peer_name} {peer:8.1f} MiB   ratio {value / peer:5.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", default=str(ROOT / "dist"))
    ap.add_argument("--zstd", action="store_true", help="also pack the tree with zstd -12 for comparison (~1 min)")
    args = ap.parse_args(argv)
    dist = Path(args.dist)
    debs = sorted(dist.glob("qmf-studio_*.deb"))
    folder = dist / "qmf-studio"
    if not debs or not folder.is_dir():
        raise SystemExit(f"installer_size_bench: no .deb or folder build in {dist}; run packaging/build_linux.sh")
    deb = debs[-1]
    deb_mib = deb.stat().st_size / MIB
    installed_kib = int(subprocess.run(["dpkg-deb", "-f", str(deb), "Installed-Size"],
                                       capture_output=True, text=True, check=True).stdout.strip())
    members = subprocess.run(["ar", "t", str(deb)], capture_output=True, text=True).stdout.split()
    print(f"{deb.name}")
    print(_line(".deb", deb_mib, DEB_LIMIT_MIB, "limit"))
    print(_line("installed (Installed-Size)", installed_kib / 1024, INSTALLED_LIMIT_MIB, "limit"))
    print(f"  data member: {next((m for m in members if m.startswith('data.tar')), '?')}")

    # the slimmed files next to the originals they were made from
    pyside = next((Path(p) / "PySide6" for p in sys.path if (Path(p) / "PySide6" / "Qt" / "lib").is_dir()), None)
    if pyside:
        for orig in sorted((pyside / "Qt" / "lib").glob("libicudata.so.*")):
            mine = folder / "_internal" / "PySide6" / "Qt" / "lib" / orig.name
            if mine.is_file():
                print(_line(f"ICU data {orig.name}", mine.stat().st_size / MIB, orig.stat().st_size / MIB, "wheel"))
    libdir = Path(sysconfig.get_config_var("LIBDIR") or "")
    ldlib = sysconfig.get_config_var("INSTSONAME") or ""  # libpython3.11.so.1.0
    orig_py = libdir / ldlib
    mine_py = folder / "_internal" / ldlib
    if ldlib and orig_py.is_file() and mine_py.is_file():
        print(_line(f"Python runtime {ldlib}", mine_py.stat().st_size / MIB, orig_py.stat().st_size / MIB, "source"))

    if args.zstd:
        tar = subprocess.Popen(["tar", "-C", str(dist), "-cf", "-", folder.name], stdout=subprocess.PIPE)
        z = subprocess.run(["zstd", "-12", "-T1", "-c"], stdin=tar.stdout, capture_output=True, check=True)
        tar.wait()
        print(_line("same tree, zstd -12 (tar)", len(z.stdout) / MIB, deb_mib, "xz -9 .deb"))
    print(report(folder, 12))
    ok = deb_mib <= DEB_LIMIT_MIB and installed_kib / 1024 <= INSTALLED_LIMIT_MIB
    print("within issue 13's limits" if ok else "OVER issue 13's limits")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
