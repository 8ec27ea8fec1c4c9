; Inno Setup 6 script for QMF Studio (Windows x64). NOT built or tested by the project's CI: Inno
; Setup only runs on Windows. Use packaging\windows\build.ps1, which builds the PyInstaller folder
; and then calls:
;   ISCC.exe /DAppVersion=<version from app\__init__.py> /DSourceDir=<dist\qmf-studio> /O<dist> qmf-studio.iss
; The version is never written here: it comes from app.__version__ via build.ps1.

#ifndef AppVersion
  #define AppVersion GetEnv("QMF_STUDIO_VERSION")
#endif
#if AppVersion == ""
  #error "Give the version: ISCC /DAppVersion=X.Y.Z (build.ps1 reads it from app\__init__.py)"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\qmf-studio"
#endif

[Setup]
AppId={{5B0F3C8E-6A41-4C2B-9E7D-3F1A2C9B7D10}
AppName=QMF Studio
AppVersion={#AppVersion}
AppVerName=QMF Studio {#AppVersion}
AppPublisher=QMF Studio developers
AppPublisherURL=https://github.com/qmfstudio/qmf-studio
DefaultDirName={autopf}\QMF Studio
DefaultGroupName=QMF Studio
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=qmf-studio-{#AppVersion}-windows-x64-setup
SetupIconFile=..\icons\qmf-studio.ico
UninstallDisplayIcon={app}\qmf-studio.exe
UninstallDisplayName=QMF Studio {#AppVersion}
LicenseFile=..\..\LICENSE
Compression=lzma2/normal
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the qmf command line to PATH"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\QMF Studio"; Filename: "{app}\qmf-studio.exe"; Comment: "See how a multimodal model trusts each of its inputs"
Name: "{autodesktop}\QMF Studio"; Filename: "{app}\qmf-studio.exe"; Tasks: desktopicon

[Registry]
; per-user install: HKCU; all-users install (admin): HKLM. {code:...} adds {app} once.
Root: HKA; Subkey: "{code:EnvKey}"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; \
    Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\qmf-studio.exe"; Description: "{cm:LaunchProgram,QMF Studio}"; Flags: nowait postinstall skipifsilent

[Code]
function EnvKey(Param: String): String;
begin
  if IsAdminInstallMode then
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
  else
    Result := 'Environment';
end;

function NeedsAddPath(Dir: String): Boolean;
var
  Paths: String;
  RootKey: Integer;
begin
  if IsAdminInstallMode then RootKey := HKEY_LOCAL_MACHINE else RootKey := HKEY_CURRENT_USER;
  if not RegQueryStringValue(RootKey, EnvKey(''), 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;
