"""Which Debian packages a folder build needs from the system: `Depends:` for the .deb.

    python3 packaging/linux/shlib_depends.py dist/qmf-studio

Runs `ldd` over every ELF file in the folder, keeps the libraries resolved *outside* it (PyInstaller
bundles the rest), maps them to packages with `dpkg -S`, and adds a `libc6 (>= X)` bound from the
highest GLIBC symbol version any file needs. Libraries `ldd` cannot find on this machine (plugins
whose system libraries are not installed here, e.g. the xcb platform plugin on a server) are mapped
with a small table of well-known sonames. Prints one Depends line; `--explain` prints the mapping.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for app.gui.xcb_libs
from app.gui.xcb_libs import DEBIAN_PACKAGES  # noqa: E402  (the X11 plugin's sonames -> packages; one table)

# soname prefix -> Debian 12 package, for libraries the build machine may not have installed.
KNOWN = {
    "libGL.so": "libgl1",
    "libEGL.so": "libegl1",
    "libOpenGL.so": "libopengl0",
    "libGLX.so": "libglx0",
    "libfontconfig.so": "libfontconfig1",
    "libfreetype.so": "libfreetype6",
    "libxkbcommon.so": "libxkbcommon0",
    "libxkbcommon-x11.so": "libxkbcommon-x11-0",
    "libdbus-1.so": "libdbus-1-3",
    "libX11.so": "libx11-6",
    "libX11-xcb.so": "libx11-xcb1",
    "libxcb.so": "libxcb1",
    "libxcb-cursor.so": "libxcb-cursor0",
    "libxcb-icccm.so": "libxcb-icccm4",
    "libxcb-image.so": "libxcb-image0",
    "libxcb-keysyms.so": "libxcb-keysyms1",
    "libxcb-randr.so": "libxcb-randr0",
    "libxcb-render-util.so": "libxcb-render-util0",
    "libxcb-render.so": "libxcb-render0",
    "libxcb-shape.so": "libxcb-shape0",
    "libxcb-shm.so": "libxcb-shm0",
    "libxcb-sync.so": "libxcb-sync1",
    "libxcb-xfixes.so": "libxcb-xfixes0",
    "libxcb-xinerama.so": "libxcb-xinerama0",
    "libxcb-xkb.so": "libxcb-xkb1",
    "libxcb-util.so": "libxcb-util1",
    "libwayland-client.so": "libwayland-client0",
    "libwayland-cursor.so": "libwayland-cursor0",
    "libwayland-egl.so": "libwayland-egl1",
    "libglib-2.0.so": "libglib2.0-0",
    "libgthread-2.0.so": "libglib2.0-0",
    "libgobject-2.0.so": "libglib2.0-0",
    "libgtk-3.so": "libgtk-3-0",
    "libgdk-3.so": "libgtk-3-0",
    "libpango-1.0.so": "libpango-1.0-0",
    "libcairo.so": "libcairo2",
    "libatk-1.0.so": "libatk1.0-0",
    "libcups.so": "libcups2",
    "libvulkan.so": "libvulkan1",
    "libdrm.so": "libdrm2",
    "libgbm.so": "libgbm1",
    "libinput.so": "libinput10",
    "libudev.so": "libudev1",
    "libmtdev.so": "libmtdev1",
    "libSM.so": "libsm6",
    "libICE.so": "libice6",
    "libXext.so": "libxext6",
    "libXrender.so": "libxrender1",
    "libXi.so": "libxi6",
    "libxshmfence.so": "libxshmfence1",
    "libts.so": "libts0",
    "libgssapi_krb5.so": "libgssapi-krb5-2",
    "libpng16.so": "libpng16-16",
    "libz.so": "zlib1g",
    "libexpat.so": "libexpat1",
    "libbz2.so": "libbz2-1.0",
    "liblzma.so": "liblzma5",
    "libffi.so": "libffi8",
    "libuuid.so": "libuuid1",
    "libstdc++.so": "libstdc++6",
    "libgcc_s.so": "libgcc-s1",
}
# Plugins that only matter on some desktops; their system libraries are recommended, not required.
OPTIONAL_PLUGIN_DIRS = ("libQt6WaylandClient", "libQt6WlShellIntegration", "libQt6EglFs", "platforms/libqwayland", "platforms/libqeglfs", "platforms/libqlinuxfb",
                        "platforms/libqvnc", "platforms/libqvkkhrdisplay", "platformthemes/", "egldeviceintegrations/",
                        "wayland-", "generic/", "xcbglintegrations/", "platforminputcontexts/", "tls/",
                        "networkinformation/", "imageformats/", "iconengines/", "sqldrivers/", "printsupport/")
GLIBC_ONLY = {"libc6"}
# Libraries that a bundled file opens with dlopen at run time, so neither objdump nor ldd sees them.
# Qt >= 6.5 refuses to load its X11 platform plugin without libxcb-cursor ("xcb-cursor0 or
# libxcb-cursor0 is needed to load the Qt xcb platform plugin"): without it the app cannot open a
# window on an X11 desktop that lacks the package.
RUNTIME_LOADED = {"platforms/libqxcb.so": ("libxcb-cursor0",)}
# Sound output: miniaudio (playback in the GUI) dlopens PulseAudio or ALSA; without either the Play
# button says there is no audio output, so these are recommended, not required.
RUNTIME_RECOMMENDED = {"_miniaudio.abi3.so": ("libpulse0 | libasound2",)}


def runtime_loaded_packages(relative_paths: list[str]) -> dict[str, str]:
    """Package -> the bundled file that dlopens its library, for the files present in the build."""
    found: dict[str, str] = {}
    for rel in relative_paths:
        for tag, packages in RUNTIME_LOADED.items():
            if rel.endswith(tag):
                for pkg in packages:
                    found.setdefault(pkg, rel)
    return found


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def package_of(path: str, cache: dict[str, str | None]) -> str | None:
    if path not in cache:
        real = str(Path(path).resolve())
        pkg = None
        for candidate in (path, real, real.replace("/usr/lib/", "/lib/"), real.replace("/lib/", "/usr/lib/", 1)):
            r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if r.returncode == 0 and r.stdout:
                pkg = r.stdout.split(":")[0].split(",")[0].strip()
                break
        cache[path] = pkg
    return cache[path]


def known_package(soname: str) -> str | None:
    if soname in DEBIAN_PACKAGES:
        return DEBIAN_PACKAGES[soname]
    for prefix, pkg in sorted(KNOWN.items(), key=lambda kv: -len(kv[0])):
        if soname.startswith(prefix):
            return pkg
    return None


def glibc_floor(files: list[Path]) -> str | None:
    best: tuple[int, ...] = ()
    for f in files:
        r = subprocess.run(["objdump", "-T", str(f)], capture_output=True, text=True)
        for m in re.finditer(r"GLIBC_(\d+(?:\.\d+)+)", r.stdout):
            v = tuple(int(x) for x in m.group(1).split("."))
            best = max(best, v)
    return ".".join(map(str, best)) if best else None


def analyse(folder: Path) -> tuple[list[str], list[str], list[str]]:
    folder = folder.resolve()
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and is_elf(p)]
    required: dict[str, set[str]] = {}
    recommended: dict[str, set[str]] = {}
    explain: list[str] = []
    cache: dict[str, str | None] = {}
    # ldd does not know the bundle's search path (the bootloader sets it at run time), so a library
    # the bundle carries may still resolve to the system's copy here: anything bundled is skipped.
    bundled = {p.name for p in folder.rglob("*") if ".so" in p.name}
    for f in files:
        rel = str(f.relative_to(folder))
        optional = any(tag in rel for tag in OPTIONAL_PLUGIN_DIRS)
        # Only the file's own DT_NEEDED entries: what the system libraries need in turn is their
        # packages' business. ldd is used to find where each one resolves on this machine.
        dump = subprocess.run(["objdump", "-p", str(f)], capture_output=True, text=True).stdout
        direct = {ln.split()[1] for ln in dump.splitlines() if ln.strip().startswith("NEEDED")}
        r = subprocess.run(["ldd", str(f)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            line = line.strip()
            m = re.match(r"(\S+) => (not found|(\S+) \(0x[0-9a-f]+\))", line)
            if not m or m.group(1) not in direct:
                continue
            soname, target = m.group(1), m.group(3)
            if soname in bundled or (target and str(Path(target).resolve()).startswith(str(folder))):
                continue
            if target is None:  # not installed on this machine: use the table
                pkg = known_package(soname)
            else:
                pkg = package_of(target, cache) or known_package(soname)
            if pkg is None:
                explain.append(f"?? {soname} ({rel}): no package known")
                continue
            (recommended if optional else required).setdefault(pkg, set()).add(soname)
    for pkg, rel in runtime_loaded_packages([str(f.relative_to(folder)) for f in files]).items():
        required.setdefault(pkg, set()).add(f"dlopen by {rel}")
    for f in files:
        for tag, packages in RUNTIME_RECOMMENDED.items():
            if str(f).endswith(tag):
                for pkg in packages:
                    recommended.setdefault(pkg, set()).add(f"dlopen by {f.relative_to(folder)}")
    floor = glibc_floor([f for f in files if "/torch/" in str(f) or f.parent == folder or "/PySide6/" in str(f)])
    deps = []
    for pkg in sorted(required):
        if pkg == "libc6" and floor:
            deps.append(f"libc6 (>= {floor})")
        else:
            deps.append(pkg)
    if "libc6" not in required and floor:
        deps.insert(0, f"libc6 (>= {floor})")
    recs = sorted(set(recommended) - set(required))
    for pkg in sorted(required):
        explain.append(f"depends {pkg}: {', '.join(sorted(required[pkg]))}")
    for pkg in recs:
        explain.append(f"recommends {pkg}: {', '.join(sorted(recommended[pkg]))}")
    return deps, recs, explain


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        raise SystemExit(__doc__)
    deps, recs, explain = analyse(Path(args[0]))
    if "--explain" in sys.argv:
        print("\n".join(explain), file=sys.stderr)
    print("Depends: " + ", ".join(deps))
    print("Recommends: " + ", ".join(recs))
