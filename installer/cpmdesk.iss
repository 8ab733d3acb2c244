; Inno Setup script: a Windows installer for the one-folder bundle (build the bundle on Windows first:
;   make bundle   -> dist\cpmdesk\cpmdesk.exe      then   iscc installer\cpmdesk.iss   -> dist\cpmdesk-setup.exe)
; Per-user install (no administrator rights), Start menu and optional desktop shortcut, clean uninstall that keeps
; the user's chats and models (they live in %LOCALAPPDATA%\cpmdesk, outside the install folder).

#define AppName "cpmdesk"
#define AppVersion "0.1.0"

[Setup]
AppId={{6C2F4E0A-8B1D-4C52-9C2B-3C7D5A1E9F10}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=cpmdesk
DefaultDirName={localappdata}\Programs\{#AppName}
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
OutputDir=..\dist
OutputBaseFilename=cpmdesk-setup
SetupIconFile=..\resources\cpmdesk.ico
UninstallDisplayIcon={app}\cpmdesk.exe
Compression=lzma2/ultra64
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"

[Files]
Source: "..\dist\cpmdesk\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\cpmdesk.exe"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\cpmdesk.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\cpmdesk.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
