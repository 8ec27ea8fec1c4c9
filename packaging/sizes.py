"""Where the space goes in a folder build:  python3 packaging/sizes.py dist/qmf-studio [N]

Prints the total, the N (default 10) largest parts (the top-level entries of `_internal/`, i.e.
torch, PySide6, the Python runtime files, ...) and the N largest single files.
"""

from __future__ import annotations

import sys
from pathlib import Path


def tree_size(p: Path) -> int:
    if p.is_symlink():
        return 0
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())


def mib(n: int) -> str:
    return f"{n / 1048576:8.1f} MiB"


def report(folder: Path, n: int = 10) -> str:
    internal = folder / "_internal"
    parts = {}
    for child in folder.iterdir():
        if child == internal:
            continue
        parts[child.name] = tree_size(child)
    if internal.is_dir():
        for child in internal.iterdir():
            parts[f"_internal/{child.name}"] = tree_size(child)
    # The two big packages, one level deeper, so the list says what inside them is large.
    for big in ("torch", "PySide6"):
        base = internal / big
        if base.is_dir():
            del parts[f"_internal/{big}"]
            for child in base.iterdir():
                parts[f"_internal/{big}/{child.name}"] = tree_size(child)
    files = sorted(
        ((f.stat().st_size, f.relative_to(folder).as_posix()) for f in folder.rglob("*") if f.is_file() and not f.is_symlink()),
        reverse=True,
    )
    lines = [f"total {mib(tree_size(folder)).strip()} in {sum(1 for _ in files)} files: {folder}"]
    lines.append(f"largest {n} parts:")
    for name, size in sorted(parts.items(), key=lambda kv: -kv[1])[:n]:
        lines.append(f"  {mib(size)}  {name}")
    lines.append(f"largest {n} files:")
    for size, name in files[:n]:
        lines.append(f"  {mib(size)}  {name}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(report(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10))
