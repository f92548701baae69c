"""MIT Kerberos's own GSS-API (libgssapi_krb5, through ctypes) as an independent DCE/RPC
Kerberos client for tests/kerberos.rs: a DCE-style context (GSS_C_DCE_STYLE) for the given
service principal from the credential cache KRB5CCNAME names; bind with auth type 0x10 at
packet privacy, header signing asked for; bind_ack's AP-REP in, the third leg out in auth3;
then one WdsRpcMessage call whose request is sealed with gss_wrap_iov and whose response is
checked and unsealed with gss_unwrap_iov, the RPC header and sec_trailer as SIGN_ONLY
buffers (what Samba does against Windows). Prints a JSON report.

Usage: mit_gss_client.py --port PORT --spn host/NAME@REALM [--namespace NS] [--object OBJ]
                         [--tamper body]

Exit codes: 0 success (or, with --tamper, the tampered response was refused), 1 protocol
error, 3 libgssapi_krb5 missing, 4 connection failed, 5 refused. Loopback only.
"""

import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dcerpc  # noqa: E402
import wdsc  # noqa: E402
from mitgss import Gss, GssError  # noqa: E402

AUTHN_GSS_KERBEROS = 0x10
CONTEXT_ID = 0
AUTH_CONTEXT_ID = 7
CALL_ID = 1

class Refused(Exception):
    pass


def run(args):
    try:
        gss = Gss()
    except (OSError, ValueError) as e:
        return 3, {"ok": False, "kind": "missing", "error": "libgssapi_krb5: %s" % e}
    gss.import_name(args.spn)
    report = {"spn": args.spn}
    sock = dcerpc.connect(args.port, 10)
    flags = dcerpc.PFC_FIRST_FRAG | dcerpc.PFC_LAST_FRAG | dcerpc.PFC_SUPPORT_HEADER_SIGN
    contexts = [(CONTEXT_ID, dcerpc.WDS_INTERFACE, [dcerpc.NDR_SYNTAX])]

    def auth(token):
        return (AUTHN_GSS_KERBEROS, dcerpc.AUTHN_LEVEL_PKT_PRIVACY, AUTH_CONTEXT_ID, token)

    ap_req, more = gss.step(None)
    report["ap_req_framed"] = ap_req[:1] == b"\x60"
    sock.sendall(dcerpc.build_pdu(dcerpc.BIND, flags, CALL_ID, dcerpc.bind_body(contexts),
                                  auth(ap_req)))
    data = dcerpc.read_pdu(sock)
    pdu = data if isinstance(data, dcerpc.Pdu) else dcerpc.Pdu(data)
    if pdu.ptype == dcerpc.BIND_NAK:
        raise Refused("bind_nak")
    if pdu.ptype != dcerpc.BIND_ACK or not pdu.auth_value:
        raise dcerpc.RpcError("%s in answer to bind" % pdu.name)
    report["header_signing"] = bool(pdu.flags & dcerpc.PFC_SUPPORT_HEADER_SIGN)
    third, more = gss.step(pdu.auth_value)
    if more or not third:
        raise dcerpc.RpcError("MIT wants more legs (continue=%s, %d bytes)" % (more, len(third)))
    sock.sendall(dcerpc.build_pdu(dcerpc.AUTH3, flags, CALL_ID, b"\0" * 4, auth(third)))

    # The request: stub padded to 16, sealed in place, header and sec_trailer signed.
    packet = wdsc.initiate_request(args.namespace, args.object, client="MITGSS",
                                   cap=wdsc.CAP_CHECKSUM)
    stub = wdsc.ndr_request(packet)
    pad = -len(stub) % 16
    plain = stub + b"\0" * pad
    fixed = dcerpc.request_fixed(len(stub), CONTEXT_ID, 0)
    trl = dcerpc.trailer(AUTHN_GSS_KERBEROS, dcerpc.AUTHN_LEVEL_PKT_PRIVACY, pad, AUTH_CONTEXT_ID)
    draft = dcerpc.header(dcerpc.REQUEST, 3, 0, 0, CALL_ID + 1) + fixed
    token_len = gss.wrap_length(draft, plain, trl)
    frag_len = dcerpc.HEADER_LEN + len(fixed) + len(plain) + dcerpc.TRAILER_LEN + token_len
    head = dcerpc.header(dcerpc.REQUEST, 3, frag_len, token_len, CALL_ID + 1) + fixed
    sealed, token = gss.wrap(head, plain, trl)
    report["request_token"] = {"len": len(token), "ec": int.from_bytes(token[4:6], "big"),
                               "rrc": int.from_bytes(token[6:8], "big")}
    sock.sendall(head + sealed + trl + token)

    data = dcerpc.read_pdu(sock)
    pdu = data if isinstance(data, dcerpc.Pdu) else dcerpc.Pdu(data)
    if pdu.ptype == dcerpc.FAULT:
        raise Refused("fault 0x%08x on the call" % dcerpc.parse_fault(pdu.body))
    if pdu.ptype != dcerpc.RESPONSE or pdu.trailer is None:
        raise dcerpc.RpcError("%s in answer to the request" % pdu.name)
    raw = bytearray(pdu.data)
    stub_at = dcerpc.HEADER_LEN + 8
    if args.tamper == "body":
        raw[stub_at] ^= 0x01
    resp_head = bytes(raw[:stub_at])
    resp_sealed = bytes(raw[stub_at:pdu.trailer_at])
    resp_trl = bytes(raw[pdu.trailer_at:pdu.trailer_at + dcerpc.TRAILER_LEN])
    resp_token = bytes(raw[pdu.trailer_at + dcerpc.TRAILER_LEN:])
    report["response_token"] = {"len": len(resp_token),
                                "ec": int.from_bytes(resp_token[4:6], "big"),
                                "rrc": int.from_bytes(resp_token[6:8], "big")}
    try:
        answer = gss.unwrap(resp_head, resp_sealed, resp_trl, resp_token)
    except GssError as e:
        if args.tamper:
            return 0, dict(report, ok=True, tamper_detected=True, error=str(e))
        raise
    if args.tamper:
        return 1, dict(report, ok=False, tamper_detected=False)
    answer = answer[:len(answer) - pdu.trailer["pad_len"]]
    reply, status = wdsc.ndr_parse_response(answer)
    if status != 0 or reply is None:
        raise Refused("WdsRpcMessage returned 0x%08x" % status)
    _endpoint, _ptype, code, variables = wdsc.decode_packet(reply)
    if code != 0:
        raise Refused("OpCode-ErrorCode 0x%08x" % code)
    report.update(ok=True, variables=wdsc.variables_json(variables))
    sock.close()
    return 0, report


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spn", required=True)
    parser.add_argument("--namespace", default="ns")
    parser.add_argument("--object", default="a.bin")
    parser.add_argument("--tamper", choices=["body"])
    args = parser.parse_args()
    try:
        code, report = run(args)
    except OSError as e:
        code, report = 4, {"ok": False, "kind": "connection", "error": str(e)}
    except Refused as e:
        code, report = 5, {"ok": False, "kind": "refused", "error": str(e)}
    except (GssError, dcerpc.RpcError, wdsc.WdscError, ValueError) as e:
        code, report = 1, {"ok": False, "kind": "protocol", "error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(report, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
