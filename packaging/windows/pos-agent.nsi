; The pos-agent installer for Windows tills. packaging/build.sh runs
;   makensis -DVERSION=V -DFILE_VERSION=A.B.C.D -DBUILD_DIR=DIR -DOUTFILE=F [-DSIGN=CMD] pos-agent.nsi
; BUILD_DIR holds pos-agent.exe (console: the CLI verbs and serve) and
; pos-agent-app.exe (the same program linked as a Windows GUI program: the
; terminal app, with no console window). With SIGN, makensis runs
; `CMD FILE` on the uninstaller and on the installer to sign them.
;
; Installs per machine into Program Files (needs an administrator), with a
; Start-menu shortcut, an optional shortcut in the common Startup folder for
; kiosk tills, and an entry in Apps & features. Silent: /S; /AUTOSTART also
; selects the Startup shortcut; /D=DIR (last) sets the folder.
; Each user's data (%LocalAppData%\pos-agent) is never touched.

Unicode true
ManifestDPIAware true
SetCompressor /SOLID lzma
RequestExecutionLevel admin

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "Sections.nsh"
!include "x64.nsh"

!define APP "Loyalty Terminal"
!define PUBLISHER "Offline Loyalty"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\pos-agent"

!ifdef SIGN
!uninstfinalize '"${SIGN}" "%1"' = 0
!finalize '"${SIGN}" "%1"' = 0
!endif

Name "${APP}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${APP}"
InstallDirRegKey HKLM "${UNINST_KEY}" "InstallLocation"

VIProductVersion "${FILE_VERSION}"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP} installer"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "LegalCopyright" "${PUBLISHER}"

!define MUI_ABORTWARNING
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
; No "run now" on the finish page: the installer runs elevated, and the app
; would start as the administrator, with the administrator's data directory.
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "${APP} (required)" SecMain
	SectionIn RO
	SetShellVarContext all
	SetOutPath "$INSTDIR"
	File "${BUILD_DIR}/pos-agent.exe"
	File "${BUILD_DIR}/pos-agent-app.exe"
	WriteUninstaller "$INSTDIR\uninstall.exe"
	CreateShortcut "$SMPROGRAMS\${APP}.lnk" "$INSTDIR\pos-agent-app.exe" "run" "$INSTDIR\pos-agent-app.exe" 0

	WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "${APP}"
	WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
	WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "${PUBLISHER}"
	WriteRegStr HKLM "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\pos-agent-app.exe,0"
	WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
	WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
	WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
	WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
	WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
	${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
	WriteRegDWORD HKLM "${UNINST_KEY}" "EstimatedSize" $0
SectionEnd

Section /o "Start at logon (kiosk tills)" SecAutostart
	SetShellVarContext all
	CreateShortcut "$SMSTARTUP\${APP}.lnk" "$INSTDIR\pos-agent-app.exe" "run" "$INSTDIR\pos-agent-app.exe" 0
SectionEnd

Function .onInit
	${IfNot} ${RunningX64}
		MessageBox MB_ICONSTOP "${APP} needs 64-bit Windows."
		Abort
	${EndIf}
	SetRegView 64
	${GetParameters} $0
	ClearErrors
	${GetOptions} $0 "/AUTOSTART" $1
	${IfNot} ${Errors}
		!insertmacro SelectSection ${SecAutostart}
	${EndIf}
FunctionEnd

Function un.onInit
	SetRegView 64
FunctionEnd

Section "Uninstall"
	SetShellVarContext all
	Delete "$SMPROGRAMS\${APP}.lnk"
	Delete "$SMSTARTUP\${APP}.lnk"
	Delete "$INSTDIR\pos-agent.exe"
	Delete "$INSTDIR\pos-agent-app.exe"
	Delete "$INSTDIR\uninstall.exe"
	RMDir "$INSTDIR"
	DeleteRegKey HKLM "${UNINST_KEY}"
SectionEnd
