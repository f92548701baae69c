"""impacket's DCE/RPC client (ncacn_ip_tcp, NTLM or Kerberos, packet privacy) as an
independent WDS RPC client for tests/rpc_peers.rs and tests/kerberos.rs: binds
WdsRpcInterface and calls WdsRpcMessage (opnum 0) with a WDSMC_OP_INITIATE packet built by
wdsc.py, then prints the reply's variables as JSON. impacket does not verify the server's
reply signatures with NTLM (spnego_client.py does); with Kerberos its unwrap checks them.

With --kerberos impacket logs in with SPNEGO (auth type 9) wrapping a DCE-style Kerberos
AP-REQ for host/REMOTE_NAME, the service ticket taken from the credential cache KRB5CCNAME
names (so it never contacts a KDC itself).

Usage: impacket_client.py --port PORT --user [DOMAIN\\]NAME --password PW
                          [--kerberos --remote-name NAME]
                          [--namespace NS] [--object OBJ] [--timeout SECONDS] [--images]

--images sends MS-WDSOSD WDS_OP_IMG_ENUMERATE to the OS deployment endpoint instead and prints
the version 1 image list it reads from the reply.

Exit codes: 0 success, 1 protocol error, 2 usage, 3 impacket missing, 4 connection failed,
5 refused (fault, bind_nak, access denied, WdsRpcMessage return value, OpCode-ErrorCode).
Loopback only.
"""

import argparse
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    from impacket.dcerpc.v5 import transport
    from impacket.dcerpc.v5.rpcrt import (
        DCERPCException,
        RPC_C_AUTHN_GSS_NEGOTIATE,
        RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
        RPC_C_AUTHN_WINNT,
        rpc_status_codes,
    )
    from impacket.uuid import uuidtup_to_bin
except ImportError as e:  # pragma: no cover - depends on the environment
    print(json.dumps({"ok": False, "error": "impacket not importable: %s" % e}))
    sys.exit(3)

import wdsc  # noqa: E402

WDS_INTERFACE = uuidtup_to_bin(("1A927394-352E-4553-AE3F-7CF4AAFCA620", "1.0"))
OPNUM_WDS_RPC_MESSAGE = 0


def run(args):
    if "\\" in args.user:
        domain, user = args.user.split("\\", 1)
    else:
        domain, user = "", args.user
    binding = "ncacn_ip_tcp:127.0.0.1[%d]" % args.port
    rpc = transport.DCERPCTransportFactory(binding)
    rpc.set_connect_timeout(args.timeout)
    rpc.set_credentials(user, args.password, domain)
    if args.kerberos:
        # The SPN is host/<remote name>; the connection still goes to 127.0.0.1.
        rpc.setRemoteName(args.remote_name)
        rpc.set_kerberos(True, kdcHost="127.0.0.1")
    dce = rpc.get_dce_rpc()
    dce.set_auth_type(RPC_C_AUTHN_GSS_NEGOTIATE if args.kerberos else RPC_C_AUTHN_WINNT)
    dce.set_auth_level(RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    report = {"stage": "connect"}
    try:
        dce.connect()
    except (OSError, socket.error) as e:
        return 4, dict(report, ok=False, kind="connection", error="%s: %s" % (type(e).__name__, e))
    try:
        report["stage"] = "bind"
        dce.bind(WDS_INTERFACE)
        report["stage"] = "call"
        if args.images:
            packet = wdsc.img_enumerate_request()
        else:
            packet = wdsc.initiate_request(args.namespace, args.object, client="IMPACKET",
                                           cap=wdsc.CAP_CHECKSUM)
        dce.call(OPNUM_WDS_RPC_MESSAGE, wdsc.ndr_request(packet))
        answer = dce.recv()
    except DCERPCException as e:
        # A fault (access denied for a wrong password), a bind_nak or a rejected context.
        # impacket raises faults met in recv() with the status name only: map it back.
        status = e.get_error_code() if hasattr(e, "get_error_code") else None
        if status is None:
            status = next((k for k, v in rpc_status_codes.items() if v == str(e)), None)
        return 5, dict(report, ok=False, kind="refused", status=status, error=str(e))
    except (OSError, socket.error, EOFError) as e:
        return 4, dict(report, ok=False, kind="connection", error="%s: %s" % (type(e).__name__, e))
    finally:
        try:
            dce.disconnect()
        except Exception:  # noqa: BLE001 - closing after a failure may fail too
            pass
    reply, status = wdsc.ndr_parse_response(answer)
    report.update(stage="reply", return_value=status)
    if status != 0 or reply is None:
        return 5, dict(report, ok=False, kind="refused", status=status,
                       error="WdsRpcMessage returned 0x%08x" % status)
    endpoint, _ptype, code, variables = wdsc.decode_packet(reply)
    expected = wdsc.OS_DEPLOYMENT_ENDPOINT if args.images else wdsc.MULTICAST_ENDPOINT
    if endpoint != expected:
        return 1, dict(report, ok=False, kind="protocol", error="reply from endpoint %s" % endpoint.hex())
    report["op_error"] = code
    if code != 0:
        return 5, dict(report, ok=False, kind="refused", status=code,
                       error="OpCode-ErrorCode 0x%08x" % code)
    if args.images:
        version = wdsc.get_var(variables, "VERSION")
        if version is None or version[1] != 1:
            return 1, dict(report, ok=False, kind="protocol", error="reply VERSION %r" % (version,))
        images = wdsc.image_list_v1(variables)
        for image in images:
            image["name"] = wdsc.xml_name(image.get("xml") or "")
        report.update(ok=True, images=images)
        return 0, report
    report.update(ok=True, variables=wdsc.variables_json(variables))
    return 0, report


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--kerberos", action="store_true")
    parser.add_argument("--remote-name", default="127.0.0.1")
    parser.add_argument("--namespace", default="ns")
    parser.add_argument("--object", default="a.bin")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--images", action="store_true")
    args = parser.parse_args()
    try:
        code, report = run(args)
    except (wdsc.WdscError, ValueError) as e:
        code, report = 1, {"ok": False, "kind": "protocol", "error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(report, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
