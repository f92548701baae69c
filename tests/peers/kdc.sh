#!/usr/bin/env bash
# A throwaway MIT Kerberos realm on loopback, for the Kerberos tests.
#
#   kdc.sh start DIR PORT [udp]
#                           make realm WDSMC.TEST in DIR (which must not exist or be empty),
#                           start krb5kdc on 127.0.0.1:PORT (UDP and TCP; UDP only with
#                           `udp`), wait until it answers, print KEY=VALUE lines (see below)
#                           and return
#   kdc.sh stop DIR         stop that KDC and remove DIR
#
# Everything lives in DIR: krb5.conf (KRB5_CONFIG), kdc.conf (KRB5_KDC_PROFILE), the
# database, the stash, the log, the server keytab, the KDC's pid. Nothing of the machine's
# own Kerberos setup is read or changed. Principals:
#   alice@WDSMC.TEST            password alice-pass-1 (pre-authentication required)
#   bob@WDSMC.TEST              password bob-pass-2
#   host/wds.wdsmc.test         random key, exported to DIR/server.keytab (aes256, aes128)
#   host/other.wdsmc.test       random key, in DIR/other.keytab only (a "wrong" service)
# Printed: KRB5_CONFIG, KRB5_KDC_PROFILE, REALM, KDC (127.0.0.1:PORT), KEYTAB, OTHER_KEYTAB,
# SPN, SETUP_MS (how long the setup took).
set -euo pipefail

REALM=WDSMC.TEST
cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || {
	echo "usage: kdc.sh start DIR PORT | kdc.sh stop DIR" >&2
	exit 2
}

if [[ $cmd == stop ]]; then
	if [[ -f $dir/kdc.pid ]]; then
		pid=$(cat "$dir/kdc.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	[[ -f $dir/kdc.conf ]] && rm -rf "${dir:?}"
	exit 0
fi

[[ $cmd == start ]] || {
	echo "kdc.sh: unknown command $cmd" >&2
	exit 2
}
port=${3:?kdc.sh start DIR PORT [udp]}
tcp_listen="127.0.0.1:$port [::1]:$port"
[[ ${4:-} == udp ]] && tcp_listen='""'
for tool in krb5kdc kdb5_util kadmin.local; do
	command -v "$tool" >/dev/null 2>&1 || [[ -x /usr/sbin/$tool ]] || {
		echo "SKIP: $tool not found (Debian: apt-get install krb5-kdc krb5-admin-server)"
		exit 3
	}
done
PATH=$PATH:/usr/sbin
# Whatever fails shows its log, not just a status.
trap 'st=$?; cat "$dir/setup.log" "$dir/kdc.log" >&2 2>/dev/null; echo "kdc.sh: failed (status $st) at line $LINENO" >&2' ERR
t0=$(date +%s%N)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

cat >"$dir/krb5.conf" <<EOF
[libdefaults]
	default_realm = $REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false
	default_ccache_name = FILE:$dir/ccache
	permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
[realms]
	$REALM = {
		kdc = 127.0.0.1:$port
		# MIT resolves KDC addresses with AI_ADDRCONFIG, which a namespace holding only lo
		# fails for 127.0.0.1; ::1 passes when the namespace has a link-local IPv6 address.
		kdc = [::1]:$port
	}
[domain_realm]
	.wdsmc.test = $REALM
	wdsmc.test = $REALM
EOF
cat >"$dir/kdc.conf" <<EOF
[kdcdefaults]
	kdc_listen = 127.0.0.1:$port [::1]:$port
	kdc_tcp_listen = $tcp_listen
[realms]
	$REALM = {
		database_name = $dir/principal
		key_stash_file = $dir/stash
		acl_file = $dir/kadm5.acl
		max_life = 10h
		max_renewable_life = 1d
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
		kadmind_listen = 127.0.0.1:1
	}
[logging]
	kdc = FILE:$dir/kdc.log
	default = FILE:$dir/kdc.log
EOF
: >"$dir/kadm5.acl"
export KRB5_CONFIG=$dir/krb5.conf KRB5_KDC_PROFILE=$dir/kdc.conf

kdb5_util -r "$REALM" create -s -P 'wdsmc master key' >"$dir/setup.log" 2>&1
kadmin.local -r "$REALM" -q "addprinc +requires_preauth -pw alice-pass-1 alice" >>"$dir/setup.log" 2>&1
kadmin.local -r "$REALM" -q "addprinc -pw bob-pass-2 bob" >>"$dir/setup.log" 2>&1
kadmin.local -r "$REALM" -q "addprinc -randkey host/wds.wdsmc.test" >>"$dir/setup.log" 2>&1
kadmin.local -r "$REALM" -q "addprinc -randkey host/other.wdsmc.test" >>"$dir/setup.log" 2>&1
kadmin.local -r "$REALM" -q "ktadd -k $dir/server.keytab host/wds.wdsmc.test" >>"$dir/setup.log" 2>&1
kadmin.local -r "$REALM" -q "ktadd -k $dir/other.keytab host/other.wdsmc.test" >>"$dir/setup.log" 2>&1

# -n: stay in the foreground (so the pid is the KDC's); -P would need a daemon.
krb5kdc -n -r "$REALM" >>"$dir/kdc.log" 2>&1 &
echo $! >"$dir/kdc.pid"
# Ready when the TCP port accepts, or (UDP only) when the log says the KDC runs.
ready=0
for _ in $(seq 300); do
	if [[ $tcp_listen != '""' ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		ready=1
		break
	fi
	if [[ $tcp_listen == '""' ]] && grep -q 'commencing operation' "$dir/kdc.log" 2>/dev/null; then
		ready=1
		break
	fi
	kill -0 "$(cat "$dir/kdc.pid")" 2>/dev/null || break
	sleep 0.05
done
if [[ $ready != 1 ]]; then
	cat "$dir/setup.log" "$dir/kdc.log" >&2
	echo "kdc.sh: krb5kdc did not start on 127.0.0.1:$port" >&2
	exit 1
fi
t1=$(date +%s%N)
echo "KRB5_CONFIG=$dir/krb5.conf"
echo "KRB5_KDC_PROFILE=$dir/kdc.conf"
echo "REALM=$REALM"
echo "KDC=127.0.0.1:$port"
echo "KEYTAB=$dir/server.keytab"
echo "OTHER_KEYTAB=$dir/other.keytab"
echo "SPN=host/wds.wdsmc.test@$REALM"
echo "SETUP_MS=$(((t1 - t0) / 1000000))"
