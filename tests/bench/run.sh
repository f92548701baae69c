#!/usr/bin/env bash
# One-command benchmark: wdsmc vs udpcast vs uftp vs a raw multicast ceiling on loopback,
# then wdsmc over a 1 Gbit/s netem veth link (loss, many receivers). Needs root (or an
# unprivileged user namespace), installs udpcast and uftp if missing, builds release, and
# runs everything inside a throwaway network namespace holding only lo.
#
#   bash tests/bench/run.sh                 full run (1 GiB + 8 GiB RSS check + netem profile)
#   SIZE=256M BIG_SIZE=0 PROFILES=loopback bash tests/bench/run.sh     quick run
#
# Knobs: see the top of tests/bench/bench.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

need_pkgs=()
command -v udp-sender >/dev/null || need_pkgs+=(udpcast)
command -v uftp >/dev/null || need_pkgs+=(uftp)
command -v tc >/dev/null || need_pkgs+=(iproute2)
command -v nft >/dev/null || need_pkgs+=(nftables)
command -v python3 >/dev/null || need_pkgs+=(python3)
if ((${#need_pkgs[@]})); then
	[[ $(id -u) -eq 0 ]] || { echo "missing ${need_pkgs[*]}; re-run as root" >&2; exit 1; }
	# uftp's postinst would start uftpd on the host; a temporary policy-rc.d prevents that.
	prc=/usr/sbin/policy-rc.d created=0
	if [[ ! -e $prc ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$prc" && chmod 755 "$prc" && created=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get -qq update && apt-get -qq install -y --no-install-recommends "${need_pkgs[@]}" || rc=$?
	[[ $created == 1 ]] && rm -f "$prc"
	[[ ${rc:-0} -eq 0 ]] || exit "$rc"
fi

# Large socket buffers (global sysctls; only ever raised) so bursts are not dropped at 212 KiB.
if [[ $(id -u) -eq 0 ]]; then
	for k in rmem_max wmem_max; do
		f=/proc/sys/net/core/$k
		(($(<"$f") >= 16777216)) || echo 16777216 >"$f"
	done
fi

cargo build --release --bin wdsmc --example mcast_blast
WDSMC_BENCH_NETNS=1 exec bash .ci/run netns python3 tests/bench/bench.py
