# PyInstaller hook for the `app` package (QMF Studio itself): take every module, because several are
# imported lazily or inside try/except (the review view, optional panels, CLI sub-commands) and
# would otherwise be missed by the import analysis.
from PyInstaller.utils.hooks import collect_submodules

hiddenimports = collect_submodules("app")
