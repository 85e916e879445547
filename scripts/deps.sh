#!/usr/bin/env bash
# Installs the Debian packages a purpose needs, only those missing. Usage: deps.sh run|test
# Prints one progress line per step; needs root (or says exactly what to install).
set -euo pipefail
purpose="${1:-run}"

run_pkgs=(jupyter-notebook python3-notebook python3-ipykernel jupyter-client)
test_pkgs=("${run_pkgs[@]}" chromium munge slurmctld slurmd slurm-client slurmdbd mariadb-server sudo curl procps util-linux slapd ldap-utils
  tigervnc-standalone-server tigervnc-tools xterm openbox x11-xserver-utils x11-utils xfonts-base xauth r-base-core r-cran-shiny
  python3-venv python3-nbclassic jupyter-server iproute2 ripgrep build-essential pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev
  ansible python3-apt rsync openssh-server openssh-client nginx-light postgresql haproxy)

case "$purpose" in
  run) want=("${run_pkgs[@]}") ;;
  test) want=("${test_pkgs[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "atrium: missing Debian packages: ${missing[*]}" >&2
  echo "atrium: install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "atrium: installing ${#missing[@]} Debian package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt() { apt-get -o DPkg::Lock::Timeout=900 -q "$@"; }
if ! apt install -y --no-install-recommends "${missing[@]}" >/tmp/atrium-apt.log 2>&1; then
  echo "atrium: updating package lists"
  apt update >>/tmp/atrium-apt.log 2>&1
  apt install -y --no-install-recommends "${missing[@]}" >>/tmp/atrium-apt.log 2>&1 || {
    tail -20 /tmp/atrium-apt.log >&2
    echo "atrium: apt-get failed (log: /tmp/atrium-apt.log)" >&2
    exit 1
  }
fi
echo "atrium: packages installed"
