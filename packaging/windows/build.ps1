# Build the QMF Studio Windows installer:   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
#
# NOT run by the project: written and reviewed on Linux, never executed on Windows. Expect to fix
# small things the first time. Needs, on Windows 10/11 x64:
#   - Python 3.11 x64 and the project's virtual environment with the CPU build of torch:
#       py -3.11 -m venv .venv
#       .venv\Scripts\pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
#       .venv\Scripts\pip install -e .[dev] pyinstaller
#   - Inno Setup 6 (https://jrsoftware.org/isinfo.php; winget install JRSoftware.InnoSetup)
# Produces dist\qmf-studio\ (folder build: qmf-studio.exe windowed, qmf.exe console),
# dist\qmf-studio-<version>-windows-x64-setup.exe and dist\qmf-studio-<version>-windows-x64.zip,
# then runs `qmf.exe --self-test` on the folder build.
param(
    [switch]$SkipPyInstaller,
    [string]$Python = ".venv\Scripts\python.exe"
)
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path (Join-Path $PSScriptRoot "..\..")).Path
Set-Location $Root

$Version = (& $Python packaging\qmf_packaging.py version).Trim()
if (-not $Version) { throw "could not read the version from app\__init__.py" }
Write-Host "QMF Studio $Version"

if (-not $SkipPyInstaller) {
    & $Python -m PyInstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller packaging\qmf-studio.spec
    if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
}

# The self-test through the console executable (the windowed one has no stdout).
& dist\qmf-studio\qmf.exe --self-test --output dist\selftest-windows.json
if ($LASTEXITCODE -ne 0) { throw "the self-test of the folder build failed (dist\selftest-windows.json)" }

$Iscc = @(
    "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe",
    "$env:ProgramFiles\Inno Setup 6\ISCC.exe",
    "$env:LOCALAPPDATA\Programs\Inno Setup 6\ISCC.exe"
) | Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $Iscc) { throw "Inno Setup 6 (ISCC.exe) not found; install it or add it to the list in build.ps1" }
& $Iscc "/DAppVersion=$Version" "/DSourceDir=$Root\dist\qmf-studio" "/O$Root\dist" packaging\windows\qmf-studio.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }

$Zip = "dist\qmf-studio-$Version-windows-x64.zip"
if (Test-Path $Zip) { Remove-Item $Zip }
Compress-Archive -Path dist\qmf-studio -DestinationPath $Zip
Get-ChildItem dist\*.exe, $Zip | Format-Table Name, @{n = "MiB"; e = { [math]::Round($_.Length / 1MB, 1) } }
