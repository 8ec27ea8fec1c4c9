"""Post-build slimming of a Linux folder build:   python3 packaging/linux/slim.py dist/qmf-studio

Two steps, both idempotent (a second run changes nothing), run by packaging/build_linux.sh after
PyInstaller and before the .deb / .tar.gz are made:

1. **ICU data.** Qt6Core (PySide6 wheel) links its own ICU 73 (`libicuuc`, `libicui18n`,
   `libicudata.so.73`), whose data library is a 30 MiB table of every locale, converter and
   dictionary ICU knows. Qt calls ICU for four things only (the undefined `*_73` symbols of
   libQt6Core): collation (`ucol_*`, QCollator: file-dialog sorting), case mapping
   (`u_strToUpper/Lower`), time-zone display names (`ucal_*`) and legacy text codecs (`ucnv_*`).
   `shrink_icu_data` rewrites the data library with the items those need (`icu_item_kept`), so it
   is 4.8 MiB; `check_icu` then calls those functions through ctypes on the result. The
   system's libicu cannot replace the bundled one: Qt6Core needs the sonames `lib*.so.73` and
   their `_73`-suffixed symbols, and Debian 12 ships ICU 72, Ubuntu 22.04 ICU 70, Ubuntu 24.04 ICU 74.
2. **Debug information.** Some bundled ELF files (the Python runtime `libpython3.11.so.1.0`, its
   `lib-dynload/` modules, a few wheels' extensions) carry DWARF sections nothing reads at run
   time; `strip_debug` removes those sections (`strip --strip-debug`: symbols and dynamic linking
   are untouched) and then loads every changed file with dlopen to prove it still loads.

Needs binutils (`strip`, `as`, `ld`), which building the .deb needs anyway (objdump).
"""

from __future__ import annotations

import fnmatch
import os
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

# ---------------------------------------------------------------------------------------- ELF
_ELF_MAGIC = b"\x7fELF"


def _elf_sections(data: bytes) -> list[tuple[str, int, int, int, int, int, int]]:
    """(name, type, addr, offset, size, link, entsize) of each section of a 64-bit little-endian ELF."""
    if data[:4] != _ELF_MAGIC or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = []
    for i in range(shnum):
        name, typ, _flags, addr, off, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        raw.append((name, typ, addr, off, size, link, entsize))
    stroff = raw[shstrndx][3]
    out = []
    for name, typ, addr, off, size, link, entsize in raw:
        end = data.index(b"\0", stroff + name)
        out.append((data[stroff + name:end].decode("ascii", "replace"), typ, addr, off, size, link, entsize))
    return out


def elf_has_debug_info(path: Path) -> bool:
    """True if `path` is an ELF file with DWARF sections (`.debug_*`)."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head != _ELF_MAGIC:
            return False
        data = head + f.read()
    try:
        return any(s[0].startswith(".debug_") for s in _elf_sections(data))
    except (ValueError, struct.error, IndexError):
        return False


def elf_symbol(data: bytes, pattern: str) -> tuple[str, int, int]:
    """(name, file offset, size) of the one dynamic symbol whose name matches the regex `pattern`."""
    sections = _elf_sections(data)
    found = []
    for name, _typ, _addr, off, size, link, entsize in sections:
        if name != ".dynsym":
            continue
        strtab_off = sections[link][3]
        for i in range(size // entsize):
            st_name, _info, _other, shndx, value, st_size = struct.unpack_from("<IBBHQQ", data, off + i * entsize)
            sym = data[strtab_off + st_name:data.index(b"\0", strtab_off + st_name)].decode("ascii", "replace")
            if re.fullmatch(pattern, sym) and 0 < shndx < len(sections):
                sec = sections[shndx]
                found.append((sym, value - sec[2] + sec[3], st_size))
    if len(found) != 1:
        raise ValueError(f"expected one symbol matching {pattern!r}, found {[f[0] for f in found]}")
    return found[0]


# ----------------------------------------------------------------------------- ICU common data
# An ICU "common data" package (icudtNNl.dat, what libicudata carries as the symbol icudtNN_dat):
# a header (uint16 size, magic 0xda 0x27, UDataInfo with format "CmnD"), then at `header size` the
# table of contents: uint32 count, count x (uint32 name offset, uint32 data offset) relative to the
# TOC, the NUL-terminated names ("icudt73l/coll/root.res", sorted), then each item 16-byte aligned.

def icu_package_items(pkg: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """(header, [(name, item bytes), ...]) of an ICU common data package."""
    header_size, magic1, magic2 = struct.unpack_from("<HBB", pkg, 0)
    if (magic1, magic2) != (0xDA, 0x27) or pkg[12:16] != b"CmnD":
        raise ValueError("not an ICU common data package (CmnD)")
    count, = struct.unpack_from("<I", pkg, header_size)
    entries = [struct.unpack_from("<II", pkg, header_size + 4 + 8 * i) for i in range(count)]
    toc = pkg[header_size:]
    items = []
    for i, (name_off, data_off) in enumerate(entries):
        end = entries[i + 1][1] if i + 1 < count else len(toc)
        name = toc[name_off:toc.index(b"\0", name_off)].decode("ascii")
        items.append((name, toc[data_off:end]))
    return pkg[:header_size], items


def build_icu_package(header: bytes, items: list[tuple[str, bytes]]) -> bytes:
    """An ICU common data package holding `items` (names sorted, as ICU's binary search needs)."""
    items = sorted(items, key=lambda it: it[0].encode("ascii"))
    count = len(items)
    names = b""
    name_offs = []
    base = 4 + 8 * count
    for name, _ in items:
        name_offs.append(base + len(names))
        names += name.encode("ascii") + b"\0"
    body = bytearray()
    data_start = base + len(names)
    data_start += -(len(header) + data_start) % 16  # items 16-byte aligned within the package
    data_offs = []
    for _, blob in items:
        body += b"\0" * (-(len(header) + data_start + len(body)) % 16)
        data_offs.append(data_start + len(body))
        body += blob
    toc = struct.pack("<I", count) + b"".join(struct.pack("<II", n, d) for n, d in zip(name_offs, data_offs, strict=True))
    toc += names
    toc += b"\0" * (data_start - len(toc))
    return header + toc + bytes(body)


# What QMF Studio keeps of ICU's data (item names without the "icudtNNl/" prefix). Qt uses ICU for
# collation, case mapping, time-zone names and legacy codecs only (see the module docstring), so:
# - coll/ stays whole (2.9 MiB): every language's sort order, so file dialogs sort names the way the
#   user's language does (Swedish å after z, Chinese by pinyin);
# - the top level keeps its locale-independent tables (case mapping, normalization, codec aliases,
#   supplemental and time-zone data) and the root and English bundles; zone/ (time-zone display
#   names) keeps root and English: other languages fall back to them;
# - dropped trees: break-iterator dictionaries (Qt has its own text boundaries), transliteration,
#   number spell-out, units, currency / language / region names: no Qt API the app can reach uses them;
# - dropped top-level items: table-driven codecs (*.cnv: Shift-JIS, GB18030, EBCDIC, ...; UTF-8/16/32
#   and Latin-1 are built into Qt and ICU's code), confusables (*.cfu), StringPrep profiles (*.spp),
#   Unicode character names (unames.icu).
ICU_DROPPED_TREES = ("brkitr", "translit", "rbnf", "unit", "curr", "lang", "region")
ICU_WHOLE_TREES = ("coll",)
ICU_DROPPED_TOP = ("*.cnv", "*.cfu", "*.spp", "unames.icu")
ICU_KEPT_LOCALES = ("en", "en_*")
_LOCALE_BUNDLE = re.compile(r"[a-z]{2,3}(_[A-Za-z0-9]+)*\.res")


def icu_item_kept(name: str) -> bool:
    """Whether the ICU data item `name` ("icudt73l/coll/root.res") stays in the bundle."""
    parts = name.split("/")[1:] if name.startswith("icudt") else name.split("/")
    if len(parts) > 1 and parts[0] in ICU_DROPPED_TREES:
        return False
    if len(parts) > 1 and parts[0] in ICU_WHOLE_TREES:
        return True
    leaf = parts[-1]
    if len(parts) == 1 and any(fnmatch.fnmatch(leaf, p) for p in ICU_DROPPED_TOP):
        return False
    if _LOCALE_BUNDLE.fullmatch(leaf):  # a locale's bundle (de.res, zh_Hant.res); root/pool/res_index are not
        return any(fnmatch.fnmatch(leaf[:-4], p) for p in ICU_KEPT_LOCALES)
    return True


def _run(cmd: list[str], **kw) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"slim: {' '.join(cmd)} failed: {r.stderr.strip() or r.stdout.strip()}")


def shrink_icu_data(lib: Path, log=print) -> tuple[int, int]:
    """Rewrite ICU's data library `lib` (libicudata.so.NN) with the kept items; (bytes before, after)."""
    data = lib.read_bytes()
    sym, off, size = elf_symbol(data, r"icudt\d+_dat")
    header, items = icu_package_items(data[off:off + size])
    kept = [it for it in items if icu_item_kept(it[0])]
    before = len(data)
    if len(kept) == len(items):
        log(f"slim: {lib.name}: already slim ({len(items)} items, {before / 1048576:.1f} MiB)")
        return before, before
    soname = lib.name
    with tempfile.TemporaryDirectory(prefix="qmf-icu.") as tmp:
        t = Path(tmp)
        (t / "icu.dat").write_bytes(build_icu_package(header, kept))
        (t / "icu.s").write_text(
            "\t.section .rodata\n"
            f"\t.globl {sym}\n\t.type {sym}, @object\n\t.balign 16\n"
            f"{sym}:\n\t.incbin \"icu.dat\"\n\t.size {sym}, . - {sym}\n"
            "\t.section .note.GNU-stack,\"\",@progbits\n",
            encoding="ascii",
        )
        _run(["as", "-o", "icu.o", "icu.s"], cwd=t)
        _run(["ld", "-shared", "-soname", soname, "--hash-style=gnu", "-z", "noexecstack", "-o", "out.so", "icu.o"], cwd=t)
        out = (t / "out.so").read_bytes()
    tmp_lib = lib.with_name(lib.name + ".slim")
    tmp_lib.write_bytes(out)
    os.chmod(tmp_lib, lib.stat().st_mode & 0o7777)
    os.replace(tmp_lib, lib)
    log(f"slim: {lib.name}: {len(kept)} of {len(items)} ICU items kept, "
        f"{before / 1048576:.1f} -> {len(out) / 1048576:.1f} MiB")
    return before, len(out)


def check_icu(lib_dir: Path) -> None:
    """Load the bundled ICU and call what Qt calls (collate, upper-case, codec, time zone)."""
    version = re.search(r"\.so\.(\d+)$", next(lib_dir.glob("libicuuc.so.*")).name).group(1)
    code = f"""
import ctypes, sys
from ctypes import POINTER, byref, c_char_p, c_int, c_int32, c_void_p
d, v = sys.argv[1], "_{version}"
uc = ctypes.CDLL(d + "/libicuuc.so.{version}", mode=ctypes.RTLD_GLOBAL)
i18n = ctypes.CDLL(d + "/libicui18n.so.{version}")
def fn(lib, name, res, *args):
    f = getattr(lib, name + v); f.restype = res; f.argtypes = list(args); return f
def u16(s):  # a NUL-terminated UChar string
    return ctypes.create_string_buffer(s.encode("utf-16-le") + bytes(2))
ucol_open = fn(i18n, "ucol_open", c_void_p, c_char_p, POINTER(c_int))
ucol_strcoll = fn(i18n, "ucol_strcoll", c_int, c_void_p, c_char_p, c_int32, c_char_p, c_int32)
err = c_int(0)
for loc in (b"en_US", b"de_DE", b"sv_SE", b""):
    err.value = 0
    coll = ucol_open(loc, byref(err))
    assert err.value <= 0 and coll, ("ucol_open", loc, err.value)
    assert ucol_strcoll(coll, u16("apple").raw, 5, u16("Banana").raw, 6) < 0, ("collation order", loc)
    assert ucol_strcoll(coll, u16("\u00e9t\u00e9").raw, 3, u16("ete").raw, 3) > 0, ("accents", loc)
    if loc == b"sv_SE":  # a language's own order (coll/sv.res): Swedish sorts å after z
        assert ucol_strcoll(coll, u16("zebra").raw, 5, u16("\u00e5sna").raw, 4) < 0, "Swedish collation"
    fn(i18n, "ucol_close", None, c_void_p)(coll)
err.value = 0
cnv = fn(uc, "ucnv_open", c_void_p, c_char_p, POINTER(c_int))(b"UTF-8", byref(err))
assert err.value <= 0 and cnv, ("ucnv_open", err.value)
buf = ctypes.create_string_buffer(128)
err.value = 0
upper = fn(uc, "u_strToUpper", c_int32, c_char_p, c_int32, c_char_p, c_int32, c_char_p, POINTER(c_int))
n = upper(buf, 64, u16("stra\u00dfe").raw, -1, b"en", byref(err))
assert err.value <= 0 and buf.raw[:2 * n].decode("utf-16-le") == "STRASSE", ("u_strToUpper", err.value)
err.value = 0
ucal_open = fn(i18n, "ucal_open", c_void_p, c_char_p, c_int32, c_char_p, c_int, POINTER(c_int))
cal = ucal_open(u16("Europe/Paris").raw, -1, b"en_US", 0, byref(err))
assert err.value <= 0 and cal, ("ucal_open", err.value)
err.value = 0
name = fn(i18n, "ucal_getTimeZoneDisplayName", c_int32, c_void_p, c_int, c_char_p, c_char_p, c_int32, POINTER(c_int))
n = name(cal, 0, b"en_US", buf, 64, byref(err))
assert err.value <= 0 and n > 0, ("ucal_getTimeZoneDisplayName", err.value)
print("ICU answers collation, case mapping, codecs, time zones:", buf.raw[:2 * n].decode("utf-16-le"))
"""
    r = subprocess.run([sys.executable, "-c", code, str(lib_dir)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"slim: the slimmed ICU in {lib_dir} fails what Qt calls: {r.stderr.strip()[-400:]}")
    print(f"slim: {r.stdout.strip()}")


# --------------------------------------------------------------------------------- debug info
def strip_debug(folder: Path, log=print) -> tuple[int, int]:
    """`strip --strip-debug` every ELF file under `folder`/_internal with DWARF sections; (before, after).

    The executables beside `_internal` are left alone: PyInstaller appends the Python archive to
    them, which strip would cut off. Each changed file is then dlopen-ed (in a child process, with
    the bundle's libraries on the search path) to prove it still loads.
    """
    internal = folder / "_internal"
    changed = []
    before = after = 0
    for p in sorted(internal.rglob("*")):
        if p.is_symlink() or not p.is_file() or not elf_has_debug_info(p):
            continue
        size = p.stat().st_size
        _run(["strip", "--strip-debug", "--preserve-dates", str(p)])
        before += size
        after += p.stat().st_size
        changed.append(p)
    if changed:
        code = ("import ctypes, sys\n"
                "bad = []\n"
                "for f in sys.argv[1:]:\n"
                "    try: ctypes.CDLL(f)\n"
                "    except OSError as e: bad.append(str(e))\n"
                "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
        env = dict(os.environ, LD_LIBRARY_PATH=str(internal))
        r = subprocess.run([sys.executable, "-c", code, *map(str, changed)],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"slim: stripped files no longer load: {r.stdout.strip()} {r.stderr.strip()[-300:]}")
    log(f"slim: stripped debug info from {len(changed)} files, {before / 1048576:.1f} -> {after / 1048576:.1f} MiB")
    return before, after


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise SystemExit(__doc__)
    folder = Path(argv[0])
    if not (folder / "_internal").is_dir():
        raise SystemExit(f"slim: {folder} is not a PyInstaller folder build (no _internal/)")
    for lib in sorted(folder.glob("_internal/PySide6/Qt/lib/libicudata.so.*")):
        shrink_icu_data(lib)
        check_icu(lib.parent)
    strip_debug(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
