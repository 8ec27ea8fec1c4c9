"""Which system libraries Qt's X11 platform plugin needs, and which of them this machine lacks.

Qt aborts with "xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb platform plugin" (and a
core dump) whichever of the plugin's ~20 X11 libraries is missing. Before Qt is imported, `main()`
reads the plugin's real dependency list — the ELF `DT_NEEDED` entries of `libqxcb.so` and,
recursively, of every library they name — resolves each name the way the dynamic loader does
(`DT_RPATH` / `LD_LIBRARY_PATH` / `DT_RUNPATH` with `$ORIGIN`, the loader cache, the default
directories) and prints one install command for every library it could not find.

No Qt is imported here (it runs before Qt, and where Qt cannot start); stdlib only.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# soname -> Debian 12 package. Derived from the real list: the DT_NEEDED closure of PySide6 6.x's
# Qt/plugins/platforms/libqxcb.so, each library resolved on a Debian 12 machine and mapped with
# `dpkg -S` (`python -m app.gui.xcb_libs` lists the closure; docs/architecture.md). shlib_depends.py
# uses the same table for libraries the build machine lacks.
DEBIAN_PACKAGES = {
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libpng16.so.16": "libpng16-16",
    "libdbus-1.so.3": "libdbus-1-3",
    "libexpat.so.1": "libexpat1",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "libpcre2-8.so.0": "libpcre2-8-0",
    "libbrotlidec.so.1": "libbrotli1",
    "libbrotlicommon.so.1": "libbrotli1",
    "libbsd.so.0": "libbsd0",
    "libmd.so.0": "libmd0",
    "libsystemd.so.0": "libsystemd0",
    "libcap.so.2": "libcap2",
    "libgcrypt.so.20": "libgcrypt20",
    "libgpg-error.so.0": "libgpg-error0",
    "liblzma.so.5": "liblzma5",
    "liblz4.so.1": "liblz4-1",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
}
# Fedora names for the libraries people most often lack (the dnf half of the hint).
FEDORA_PACKAGES = {
    "libxcb-cursor.so.0": "xcb-util-cursor", "libxcb-icccm.so.4": "xcb-util-wm", "libxcb-keysyms.so.1":
    "xcb-util-keysyms", "libxcb-image.so.0": "xcb-util-image", "libxcb-render-util.so.0": "xcb-util-renderutil",
    "libxcb-util.so.1": "xcb-util", "libxkbcommon-x11.so.0": "libxkbcommon-x11",
}
# The loader's default directories after the cache (x86-64 and aarch64 Debian/Fedora layouts).
DEFAULT_DIRS = ("/lib", "/usr/lib", "/lib64", "/usr/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu")
# Provided by the C library itself; never "missing" in a running Python.
LIBC_NAMES = re.compile(r"^(libc|libm|libdl|libpthread|librt|libresolv|ld-linux[-\w]*)\.so")

DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 1, 5, 15, 29
PT_LOAD, PT_DYNAMIC = 1, 2


@dataclass(frozen=True)
class ElfInfo:
    elf_class: int  # 1 = 32-bit, 2 = 64-bit
    machine: int
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]


def read_elf(path: str | os.PathLike) -> ElfInfo | None:
    """The dynamic section's NEEDED / RPATH / RUNPATH of an ELF file; None when it is not one."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        machine = struct.unpack_from(end + "H", data, 18)[0]
        if is64:
            phoff, = struct.unpack_from(end + "Q", data, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
        else:
            phoff, = struct.unpack_from(end + "I", data, 28)
            phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
        loads, dynamic = [], None
        for i in range(phnum):
            off = phoff + i * phentsize
            if is64:
                p_type, _flags, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(end + "IIQQQQ", data, off)
            else:
                p_type, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(end + "IIIII", data, off)
            if p_type == PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            return ElfInfo(data[4], machine, (), (), ())
        entries, strtab_vaddr = [], None
        fmt, size = (end + "qQ", 16) if is64 else (end + "iI", 8)
        for off in range(dynamic[0], dynamic[0] + dynamic[1], size):
            tag, val = struct.unpack_from(fmt, data, off)
            if tag == 0:
                break
            if tag == DT_STRTAB:
                strtab_vaddr = val
            entries.append((tag, val))
        strtab = next((off + strtab_vaddr - va for va, off, sz in loads if va <= strtab_vaddr < va + sz), None)
        if strtab is None:
            return None

        def string(at: int) -> str:
            start = strtab + at
            return data[start:data.index(b"\0", start)].decode("utf-8", "replace")

        needed = tuple(string(v) for t, v in entries if t == DT_NEEDED)
        rpath = tuple(p for t, v in entries if t == DT_RPATH for p in string(v).split(":") if p)
        runpath = tuple(p for t, v in entries if t == DT_RUNPATH for p in string(v).split(":") if p)
        return ElfInfo(data[4], machine, needed, rpath, runpath)
    except (struct.error, ValueError):
        return None


def loader_cache() -> dict[str, str]:
    """soname -> path from the loader cache (`ldconfig -p`); empty where ldconfig is not there."""
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"):
        try:
            out = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        cache: dict[str, str] = {}
        for m in re.finditer(r"^\s*(\S+) \(([^)]*)\) => (\S+)$", out, re.M):
            if "x86-64" in m.group(2) or "64bit" in m.group(2) or "AArch64" in m.group(2):
                cache.setdefault(m.group(1), m.group(3))
        return cache
    return {}


@dataclass
class Closure:
    found: dict[str, str] = field(default_factory=dict)      # soname -> resolved path
    missing: dict[str, str] = field(default_factory=dict)    # soname -> the file that needs it


def dependency_closure(root: str | os.PathLike, *, ld_library_path: str | None = None,
                       cache: dict[str, str] | None = None, default_dirs: tuple[str, ...] = DEFAULT_DIRS) -> Closure:
    """Every library `root` needs, directly or through another, resolved as the loader would."""
    lib_path = os.environ.get("LD_LIBRARY_PATH", "") if ld_library_path is None else ld_library_path
    env_dirs = [d for d in lib_path.split(":") if d]
    cache = loader_cache() if cache is None else cache
    top = read_elf(root)
    result = Closure()
    if top is None:
        return result

    def compatible(path: str) -> bool:
        info = read_elf(path)
        return info is not None and info.elf_class == top.elf_class and info.machine == top.machine

    def resolve(name: str, needer: str, info: ElfInfo) -> str | None:
        origin = str(Path(needer).parent)
        rpath = [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for d in info.rpath]
        runpath = [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for d in info.runpath]
        dirs = (rpath if not runpath else []) + env_dirs + runpath
        for d in dirs:
            cand = os.path.join(d, name)
            if os.path.exists(cand) and compatible(cand):
                return cand
        cached = cache.get(name)
        if cached and os.path.exists(cached) and compatible(cached):
            return cached
        for d in default_dirs:
            cand = os.path.join(d, name)
            if os.path.exists(cand) and compatible(cand):
                return cand
        return None

    todo = [(str(root), top)]
    seen: set[str] = set()
    while todo:
        needer, info = todo.pop()
        for name in info.needed:
            if name in seen or "/" in name:
                continue
            seen.add(name)
            path = resolve(name, needer, info)
            if path is None:
                if not LIBC_NAMES.match(name):
                    result.missing[name] = needer
                continue
            result.found[name] = path
            sub = read_elf(path)
            if sub is not None:
                todo.append((path, sub))
    return result


def xcb_plugin_path() -> Path | None:
    """The X11 platform plugin Qt will load: QT_QPA_PLATFORM_PLUGIN_PATH first, then PySide6's own."""
    override = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if override:
        cand = Path(override) / "libqxcb.so"
        if cand.exists():
            return cand
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        cand = Path(base) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if cand.exists():
            return cand
    return None


def install_hint(missing: list[str]) -> str:
    """One line: what is missing and one command that installs all of it."""
    debian = sorted({DEBIAN_PACKAGES.get(n, n) for n in missing})
    unknown = sorted(n for n in missing if n not in DEBIAN_PACKAGES)
    fedora = sorted({FEDORA_PACKAGES[n] for n in missing if n in FEDORA_PACKAGES})
    hint = (f"qmf-studio: Qt's X11 platform plugin needs {len(missing)} system "
            f"librar{'y' if len(missing) == 1 else 'ies'} this machine lacks ({', '.join(sorted(missing))}); "
            f"install {'it' if len(missing) == 1 else 'them'} with: sudo apt install {' '.join(debian)}")
    if unknown:
        hint += f" (no Debian package known for {', '.join(unknown)}: search with apt-file search)"
    if fedora:
        hint += f"; on Fedora: sudo dnf install {' '.join(fedora)}"
    return hint + "; or run under Wayland with QT_QPA_PLATFORM=wayland."


def missing_xcb_libraries(plugin: str | os.PathLike | None = None, **kwargs) -> list[str]:
    """Sonames the X11 plugin needs (directly or through another library) that cannot be found."""
    plugin = xcb_plugin_path() if plugin is None else plugin
    if plugin is None:
        return []
    return sorted(dependency_closure(plugin, **kwargs).missing)


if __name__ == "__main__":  # `python -m app.gui.xcb_libs`: list what the plugin needs and where it resolves
    found = xcb_plugin_path()
    if found is None:
        raise SystemExit("no PySide6 X11 plugin found")
    c = dependency_closure(found)
    for n, p in sorted(c.found.items()):
        print(f"{n} => {p}")
    for n, by in sorted(c.missing.items()):
        print(f"{n} => not found (needed by {by})")
    if c.missing:
        print(install_hint(sorted(c.missing)), file=sys.stderr)
