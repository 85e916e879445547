#!/usr/bin/env bash
# Installs the software behind Atrium's shipped apps on this host (the gateway host for the local
# backend, or a node image). Idempotent: what is already there at the right version is skipped.
#
#   bash scripts/apps.sh install code-server|desktop|shiny|jupyter|cli|all
#   bash scripts/apps.sh status
#
# ATRIUM_APPS_DIR  where non-Debian apps go (default /opt/atrium-apps); code-server ends up at
#                  $ATRIUM_APPS_DIR/bin/code-server, the path the built-in "vscode" app uses.
# Needs root for apt-get and for /tmp/.X11-unix; prints one line per step.
set -euo pipefail

APPS_DIR=${ATRIUM_APPS_DIR:-/opt/atrium-apps}
CODE_SERVER_VERSION=4.100.3 # the last code-server release that runs on Node 20
RIPGREP_PKG_VERSION=1.15.11 # @vscode/ripgrep version code-server 4.100.3 depends on
RIPGREP_ASSET=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz

say() { echo "apps.sh: $*"; }
die() {
  echo "apps.sh: $*" >&2
  exit 1
}

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]})"
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get -o DPkg::Lock::Timeout=900 -q install -y --no-install-recommends "${missing[@]}" >/tmp/atrium-apps-apt.log 2>&1; then
    apt-get -o DPkg::Lock::Timeout=900 -q update >>/tmp/atrium-apps-apt.log 2>&1
    apt-get -o DPkg::Lock::Timeout=900 -q install -y --no-install-recommends "${missing[@]}" >>/tmp/atrium-apps-apt.log 2>&1 ||
      { tail -20 /tmp/atrium-apps-apt.log >&2; die "apt-get failed (log: /tmp/atrium-apps-apt.log)"; }
  fi
}

# X servers started by users would otherwise create /tmp/.X11-unix owned by the first of them.
x11_dir() {
  if [ "$(id -u)" -eq 0 ]; then
    install -d -m 1777 -o root -g root /tmp/.X11-unix
  elif [ ! -d /tmp/.X11-unix ]; then
    say "warning: /tmp/.X11-unix is missing; as root run: install -d -m 1777 -o root -g root /tmp/.X11-unix"
  fi
}

code_server_installed() {
  local pj=$APPS_DIR/code-server/node_modules/code-server/package.json
  [ -x "$APPS_DIR/bin/code-server" ] && [ -f "$pj" ] &&
    [ "$(node -p "require('$pj').version" 2>/dev/null)" = "$CODE_SERVER_VERSION" ]
}

install_code_server() {
  if code_server_installed; then
    say "code-server $CODE_SERVER_VERSION is installed in $APPS_DIR"
    return 0
  fi
  command -v node >/dev/null || die "node is needed"
  [ "$(node -p 'process.versions.node.split(".")[0]')" = 20 ] ||
    say "warning: code-server $CODE_SERVER_VERSION is built for Node 20 (this is $(node -v))"
  # Native modules (argon2, kerberos, node-pty, spdlog...) compile with node-gyp.
  apt_install build-essential pkg-config python3 libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev ripgrep
  local t0 tmp
  t0=$(date +%s)
  tmp=$(mktemp -d /tmp/atrium-code-server.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" RETURN
  # @vscode/ripgrep downloads its binary from GitHub in postinstall; seed its cache with Debian's rg.
  mkdir -p "$tmp/rg" "$tmp/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION"
  cp /usr/bin/rg "$tmp/rg/rg"
  tar czf "$tmp/vscode-ripgrep-cache-$RIPGREP_PKG_VERSION/$RIPGREP_ASSET" -C "$tmp/rg" rg
  local stage=$APPS_DIR/code-server.new
  rm -rf "$stage"
  mkdir -p "$stage"
  echo '{"name":"atrium-code-server","private":true}' >"$stage/package.json"
  say "installing code-server $CODE_SERVER_VERSION from npm (about a minute; native modules compile)"
  # npm_config_unsafe_perm: its postinstall refuses root otherwise (npm 11 ignores --unsafe-perm).
  # npm_config_yes: node-pty's postinstall runs `npx node-gyp`, which asks for confirmation without a TTY.
  if ! (cd "$stage" && TMPDIR=$tmp npm_config_unsafe_perm=true npm_config_yes=true FORCE_NODE_VERSION=20 \
    npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >"$tmp/npm.log" 2>&1); then
    tail -30 "$tmp/npm.log" >&2
    die "npm install code-server failed"
  fi
  [ -x "$stage/node_modules/.bin/code-server" ] || die "code-server binary missing after install"
  rm -rf "$APPS_DIR/code-server"
  mv "$stage" "$APPS_DIR/code-server"
  mkdir -p "$APPS_DIR/bin"
  ln -sfn ../code-server/node_modules/.bin/code-server "$APPS_DIR/bin/code-server"
  chmod -R a+rX "$APPS_DIR"
  say "code-server $CODE_SERVER_VERSION installed in $(($(date +%s) - t0)) s: $APPS_DIR/bin/code-server"
}

install_desktop() {
  apt_install tigervnc-standalone-server tigervnc-tools xterm openbox x11-xserver-utils xfonts-base xauth
  x11_dir
  say "desktop: Xvnc $(dpkg-query -W -f='${Version}' tigervnc-standalone-server), openbox, xterm"
}

install_shiny() {
  apt_install r-base-core r-cran-shiny
  say "shiny: R $(dpkg-query -W -f='${Version}' r-base-core), shiny $(dpkg-query -W -f='${Version}' r-cran-shiny)"
}

install_jupyter() {
  apt_install jupyter-notebook python3-notebook python3-ipykernel jupyter-client
  say "jupyter: notebook $(dpkg-query -W -f='${Version}' python3-notebook)"
}

# The `atrium` command on the PATH of every login (sessions' login shells reset PATH from /etc/profile):
# users run `atrium kernel add` in a session's terminal or on a login node.
install_cli() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  [ "$(id -u)" -eq 0 ] || die "run as root to link /usr/local/bin/atrium"
  ln -sfn "$root/bin/atrium" /usr/local/bin/atrium
  say "cli: /usr/local/bin/atrium -> $root/bin/atrium"
}

status() {
  if code_server_installed; then echo "code-server: $CODE_SERVER_VERSION ($APPS_DIR/bin/code-server)"; else echo "code-server: not installed"; fi
  for b in /usr/bin/Xvnc /usr/bin/openbox /usr/bin/xterm /usr/bin/Rscript /usr/bin/jupyter-notebook /usr/bin/jupyter-lab; do
    if [ -x "$b" ]; then echo "$(basename "$b"): yes"; else echo "$(basename "$b"): no"; fi
  done
  if [ -d /tmp/.X11-unix ]; then echo "/tmp/.X11-unix: $(stat -c '%a %U' /tmp/.X11-unix)"; else echo "/tmp/.X11-unix: missing"; fi
}

case "${1:-}" in
install)
  shift
  [ $# -gt 0 ] || die "usage: $0 install code-server|desktop|shiny|jupyter|cli|all"
  for what in "$@"; do
    case "$what" in
    code-server | vscode) install_code_server ;;
    desktop) install_desktop ;;
    shiny) install_shiny ;;
    jupyter) install_jupyter ;;
    cli) install_cli ;;
    all) install_jupyter && install_desktop && install_shiny && install_code_server && install_cli ;;
    *) die "unknown app '$what' (code-server, desktop, shiny, jupyter, cli, all)" ;;
    esac
  done
  ;;
status) status ;;
*)
  echo "usage: $0 install code-server|desktop|shiny|jupyter|cli|all | status" >&2
  exit 2
  ;;
esac
