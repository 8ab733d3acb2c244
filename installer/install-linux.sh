#!/bin/sh
# Install the bundle for the current user: double-click "cpmdesk" in the applications menu afterwards.
#   sh installer/install-linux.sh [BUNDLE_DIR]      (default: dist/cpmdesk, built by `make bundle`)
# Uninstall: sh installer/install-linux.sh --uninstall   (your chats and models in the data folder are kept)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
APP="$DATA/cpmdesk-app"
BIN="$HOME/.local/bin"
if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$APP" "$BIN/cpmdesk" "$DATA/applications/cpmdesk.desktop" \
        "$DATA/icons/hicolor/256x256/apps/cpmdesk.png" "$DATA/icons/hicolor/scalable/apps/cpmdesk.svg"
    echo "cpmdesk removed (chats and models are kept in $DATA/cpmdesk)"
    exit 0
fi
BUNDLE=${1:-$HERE/../dist/cpmdesk}
[ -x "$BUNDLE/cpmdesk" ] || { echo "error: no bundle at $BUNDLE; build it with: make bundle" >&2; exit 2; }
rm -rf "$APP"
mkdir -p "$APP" "$BIN" "$DATA/applications" "$DATA/icons/hicolor/256x256/apps" "$DATA/icons/hicolor/scalable/apps"
cp -a "$BUNDLE/." "$APP/"
ln -sf "$APP/cpmdesk" "$BIN/cpmdesk"
cp "$HERE/../resources/cpmdesk.png" "$DATA/icons/hicolor/256x256/apps/cpmdesk.png"
cp "$HERE/../resources/cpmdesk.svg" "$DATA/icons/hicolor/scalable/apps/cpmdesk.svg"
sed "s|^Exec=.*|Exec=$APP/cpmdesk|" "$HERE/cpmdesk.desktop" > "$DATA/applications/cpmdesk.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$DATA/applications" || true
echo "cpmdesk installed: $APP (menu entry: $DATA/applications/cpmdesk.desktop)"
