"""An independent WDS RPC client for tests/rpc_peers.rs: DCE/RPC on a raw socket (dcerpc.py),
pyspnego as the NTLM or SPNEGO(NTLM) initiator, WdsRpcMessage carrying a WDSMC_OP_INITIATE
request (wdsc.py). Unlike impacket it VERIFIES the server's signatures: every response
fragment goes through pyspnego's unwrap_iov with header signing.

Usage: spnego_client.py --port PORT --user DOMAIN\\NAME --password PW
                        [--protocol ntlm|negotiate] [--namespace NS] [--object OBJ]
                        [--tamper header|body|trailer] [--timeout SECONDS]
                        [--windows-contexts] [--verification-trailer]
                        [--request-fragment N] [--calls N]
                        [--protocol negotiate-kerberos-first [--optimistic-token junk|none]]

negotiate-kerberos-first builds the SPNEGO tokens here (pyspnego's NegTokenInit /
NegTokenResp classes around its NTLM context) the way Windows clients without a ticket
do: mechTypes MS-Kerberos, Kerberos, NEGOEX, NTLM with an optimistic token for the first
(junk bytes the acceptor must not use; pyspnego's own acceptor trips over them, so
"none" leaves it out), so the acceptor must pick NTLM by supportedMech and the NTLM exchange takes two
alter_context legs; the mechListMIC is then mandatory (RFC 4178 section 5).

--windows-contexts offers the NDR64 and bind-time feature negotiation contexts next to NDR
as Windows clients do; --verification-trailer appends an MS-RPCE 2.2.2.13 verification
trailer to the request stub; --request-fragment cuts the request into fragments of at
most N bytes.

Prints one JSON object on stdout. Exit codes: 0 success (with --tamper: the tampered
response was refused), 1 protocol error or tampering not detected, 2 usage, 3 pyspnego
missing, 4 connection failed or closed, 5 refused (bind_nak, fault, WdsRpcMessage return
value, OpCode-ErrorCode), 7 a response failed verification. Loopback only.
"""

import argparse
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import spnego
    from spnego.exceptions import SpnegoError
except ImportError as e:  # pragma: no cover - depends on the environment
    print(json.dumps({"ok": False, "error": "pyspnego not importable: %s" % e}))
    sys.exit(3)

import dcerpc  # noqa: E402
import wdsc  # noqa: E402

CONTEXT_ID = 0
AUTH_CONTEXT_ID = 0x5EED  # not 0, so a server that ignores it and sends 0 is caught
BIND_CALL_ID = 1
FIRST_CALL_ID = 2


class Refused(Exception):
    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def read_pdu(sock):
    try:
        return dcerpc.Pdu(dcerpc.read_pdu(sock))
    except EOFError as e:
        raise ConnectionError("server closed the connection: %s" % e)


class KerberosFirstSpnego:
    """An SPNEGO initiator that offers mechanisms it cannot use before NTLM."""

    MECHS = ["1.2.840.48018.1.2.2", "1.2.840.113554.1.2.2", "1.3.6.1.4.1.311.2.2.30",
             "1.3.6.1.4.1.311.2.2.10"]

    def __init__(self, user, password, optimistic):
        self.optimistic = optimistic
        from spnego import _spnego as tokens  # pyspnego's own DER classes
        self.tokens = tokens
        self.ntlm = spnego.client(username=user, password=password, hostname="wdsmc",
                                  service="host", protocol="ntlm",
                                  options=spnego.NegotiateOptions.use_ntlm)
        self.legs = 0
        self.complete = False
        self.negotiated_protocol = None

    def step(self, token=None):
        t = self.tokens
        self.legs += 1
        if token is None:
            # The optimistic token would be a Kerberos AP-REQ; any bytes do, as the acceptor
            # must not use a token for a mechanism it does not pick.
            return t.NegTokenInit(mech_types=self.MECHS, mech_token=self.optimistic).pack()
        resp = t.unpack_token(token)
        if not isinstance(resp, t.NegTokenResp):
            raise dcerpc.RpcError("expected a NegTokenResp, got %s" % type(resp).__name__)
        if resp.neg_state == t.NegState.reject:
            raise dcerpc.RpcError("SPNEGO acceptor rejected the mechanism list")
        if self.legs == 2:
            if resp.supported_mech != self.MECHS[-1] or resp.response_token:
                raise dcerpc.RpcError("expected supportedMech NTLM and no token, got %s / %r"
                                      % (resp.supported_mech, resp.response_token))
            return t.NegTokenResp(response_token=self.ntlm.step()).pack()
        if self.legs == 3:
            authenticate = self.ntlm.step(resp.response_token)
            mic = self.ntlm.sign(t.pack_mech_type_list(self.MECHS))
            self.ntlm._reset_ntlm_crypto_state()  # MS-SPNG 3.3.5.1, as pyspnego does
            return t.NegTokenResp(response_token=authenticate, mech_list_mic=mic).pack()
        if resp.neg_state != t.NegState.accept_complete or not resp.mech_list_mic:
            raise dcerpc.RpcError("expected accept-completed with a mechListMIC")
        self.ntlm.verify(t.pack_mech_type_list(self.MECHS), resp.mech_list_mic)
        self.ntlm._reset_ntlm_crypto_state(outgoing=False)
        self.complete = True
        self.negotiated_protocol = "ntlm"
        return None

    def wrap_iov(self, *a, **k):
        return self.ntlm.wrap_iov(*a, **k)

    def unwrap_iov(self, *a, **k):
        return self.ntlm.unwrap_iov(*a, **k)


def run(args):
    protocol = args.protocol
    auth_type = dcerpc.AUTHN_WINNT if protocol == "ntlm" else dcerpc.AUTHN_GSS_NEGOTIATE
    if protocol == "negotiate-kerberos-first":
        token = {"junk": b"\x60\x00", "none": None}[args.optimistic_token]
        ctx = KerberosFirstSpnego(args.user, args.password, token)
    else:
        options = (spnego.NegotiateOptions.use_ntlm if protocol == "ntlm"
                   else spnego.NegotiateOptions.use_negotiate)
        ctx = spnego.client(username=args.user, password=args.password, hostname="wdsmc",
                            service="host", protocol=protocol, options=options)
    report = {"protocol": protocol, "auth_type": auth_type}
    sock = dcerpc.connect(args.port, args.timeout)
    contexts = [(CONTEXT_ID, dcerpc.WDS_INTERFACE, [dcerpc.NDR_SYNTAX])]
    if args.windows_contexts:
        contexts += [(CONTEXT_ID + 1, dcerpc.WDS_INTERFACE, [dcerpc.NDR64_SYNTAX]),
                     (CONTEXT_ID + 2, dcerpc.WDS_INTERFACE, [dcerpc.BIND_TIME_FEATURES])]
    leg_flags = dcerpc.PFC_FIRST_FRAG | dcerpc.PFC_LAST_FRAG | dcerpc.PFC_SUPPORT_HEADER_SIGN

    def leg_auth(token):
        return (auth_type, dcerpc.AUTHN_LEVEL_PKT_PRIVACY, AUTH_CONTEXT_ID, token)

    # bind -> bind_ack
    token = ctx.step()
    sock.sendall(dcerpc.build_pdu(dcerpc.BIND, leg_flags, BIND_CALL_ID,
                                  dcerpc.bind_body(contexts), leg_auth(token)))
    pdu = read_pdu(sock)
    if pdu.ptype == dcerpc.BIND_NAK:
        reason = int.from_bytes(pdu.body[:2], "little")
        raise Refused("bind_nak, reason %d" % reason, status=reason)
    if pdu.ptype == dcerpc.FAULT:
        status = dcerpc.parse_fault(pdu.body)
        raise Refused("fault 0x%08x on bind" % status, status=status)
    if pdu.ptype != dcerpc.BIND_ACK:
        raise dcerpc.RpcError("%s in answer to bind" % pdu.name)
    if pdu.call_id != BIND_CALL_ID:
        raise dcerpc.RpcError("bind_ack for call %d, bind was %d" % (pdu.call_id, BIND_CALL_ID))
    ack = dcerpc.parse_bind_ack(pdu.body)
    report["bind_ack"] = {k: ack[k] for k in ("max_xmit", "max_recv", "assoc_group", "secondary")}
    report["header_sign_ack"] = bool(pdu.flags & dcerpc.PFC_SUPPORT_HEADER_SIGN)
    if not ack["results"] or ack["results"][0][0] != 0:
        raise Refused("presentation context rejected: %r" % (ack["results"],))
    if ack["results"][0][2] != dcerpc.NDR_SYNTAX:
        raise dcerpc.RpcError("bind_ack accepted another transfer syntax")
    report["context_results"] = [[r[0], r[1]] for r in ack["results"]]
    if len(ack["results"]) != len(contexts):
        raise dcerpc.RpcError("%d results for %d contexts" % (len(ack["results"]), len(contexts)))
    if pdu.trailer is None:
        raise dcerpc.RpcError("bind_ack without an auth token")
    if (pdu.trailer["auth_type"], pdu.trailer["context_id"]) != (auth_type, AUTH_CONTEXT_ID):
        raise dcerpc.RpcError("bind_ack token for auth_type %d context %d"
                              % (pdu.trailer["auth_type"], pdu.trailer["context_id"]))

    # auth3 (NTLM) or alter_context -> alter_context_resp (SPNEGO)
    token = ctx.step(pdu.auth_value)
    if protocol == "ntlm":
        if not ctx.complete or not token:
            raise dcerpc.RpcError("NTLM initiator did not finish after the CHALLENGE")
        sock.sendall(dcerpc.build_pdu(dcerpc.AUTH3, leg_flags, BIND_CALL_ID, b"\0" * 4,
                                      leg_auth(token)))
    else:
        # alter_context legs until the initiator has nothing more to send
        legs = 0
        while token:
            legs += 1
            if legs > 3:
                raise dcerpc.RpcError("SPNEGO still not complete after %d legs" % legs)
            sock.sendall(dcerpc.build_pdu(dcerpc.ALTER_CONTEXT, leg_flags, BIND_CALL_ID,
                                          dcerpc.bind_body(contexts), leg_auth(token)))
            pdu = read_pdu(sock)
            if pdu.ptype == dcerpc.FAULT:
                status = dcerpc.parse_fault(pdu.body)
                raise Refused("fault 0x%08x on alter_context" % status, status=status)
            if pdu.ptype == dcerpc.BIND_NAK:
                raise Refused("bind_nak on alter_context")
            if pdu.ptype != dcerpc.ALTER_CONTEXT_RESP:
                raise dcerpc.RpcError("%s in answer to alter_context" % pdu.name)
            token = ctx.step(pdu.auth_value) if pdu.auth_value else None
        report["alter_context_legs"] = legs
        if not ctx.complete:
            raise dcerpc.RpcError("SPNEGO not complete after alter_context_resp")
    report["negotiated"] = ctx.negotiated_protocol

    # request -> response fragments, every one verified and unsealed; with --calls, more
    # calls on the same connection (sequence numbers and RC4 states carry on)
    sealer = dcerpc.Sealer(ctx, auth_type, AUTH_CONTEXT_ID, align=16)
    report["calls"] = 0
    for n in range(args.calls):
        call_id = FIRST_CALL_ID + n
        outcome = call(sock, sealer, args, ack, call_id, report, tamper=args.tamper if n == 0 else None)
        if outcome is not None:
            return outcome
        report["calls"] += 1
    sock.close()
    report["ok"] = True
    return 0, report


def call(sock, sealer, args, ack, call_id, report, tamper):
    """One WdsRpcMessage call; None when it succeeded (report updated), else (code, report)
    for a --tamper run."""
    packet = wdsc.initiate_request(args.namespace, args.object, client="PYSPNEGO",
                                   cap=wdsc.CAP_CHECKSUM)
    stub = wdsc.ndr_request(packet)
    if args.verification_trailer:
        stub += b"\0" * (-len(stub) % 4) + dcerpc.verification_trailer()
    overhead = dcerpc.HEADER_LEN + 8 + dcerpc.TRAILER_LEN + dcerpc.SIGNATURE_LEN
    chunks = dcerpc.fragments(stub, min(ack["max_recv"], args.request_fragment or 4280),
                              overhead)
    sent = 0
    for i, chunk in enumerate(chunks):
        flags = (dcerpc.PFC_FIRST_FRAG if i == 0 else 0) | (
            dcerpc.PFC_LAST_FRAG if i == len(chunks) - 1 else 0)
        fixed = dcerpc.request_fixed(len(stub) - sent, CONTEXT_ID, 0)
        sent += len(chunk)
        sock.sendall(sealer.seal_pdu(dcerpc.REQUEST, flags, call_id, fixed, chunk))
    report["request_fragments"] = len(chunks)

    answer = b""
    count = 0
    while True:
        pdu = read_pdu(sock)
        if pdu.ptype == dcerpc.FAULT:
            status = dcerpc.parse_fault(pdu.body)
            if pdu.call_id != call_id:
                raise dcerpc.RpcError("fault 0x%08x for call %d, call %d is outstanding"
                                      % (status, pdu.call_id, call_id))
            raise Refused("fault 0x%08x on call %d" % (status, call_id), status=status)
        if pdu.ptype != dcerpc.RESPONSE:
            raise dcerpc.RpcError("%s in answer to the request" % pdu.name)
        if pdu.call_id != call_id:
            raise dcerpc.RpcError("response for call %d, expected %d" % (pdu.call_id, call_id))
        if (count == 0) != bool(pdu.flags & dcerpc.PFC_FIRST_FRAG):
            raise dcerpc.RpcError("FIRST_FRAG on fragment %d" % count)
        damage = tamper if count == 0 else None
        try:
            answer += sealer.open_pdu(pdu, 8, tamper=damage)
        except SpnegoError as e:
            if damage:
                report.update(ok=True, tamper=damage, tamper_detected=True,
                              error="%s: %s" % (type(e).__name__, e))
                return 0, report
            raise VerifyFailed("call %d, response fragment %d: %s: %s"
                               % (call_id, count, type(e).__name__, e))
        if damage:
            report.update(ok=False, tamper=damage, tamper_detected=False,
                          error="a tampered response fragment was accepted")
            return 1, report
        count += 1
        if pdu.flags & dcerpc.PFC_LAST_FRAG:
            break
    report["response_fragments"] = count
    report["mac_verified"] = True

    reply, status = wdsc.ndr_parse_response(answer)
    report["return_value"] = status
    if status != 0 or reply is None:
        raise Refused("WdsRpcMessage returned 0x%08x" % status, status=status)
    endpoint, _ptype, code, variables = wdsc.decode_packet(reply)
    if endpoint != wdsc.MULTICAST_ENDPOINT:
        raise dcerpc.RpcError("reply from endpoint %s" % endpoint.hex())
    report["op_error"] = code
    if code != 0:
        raise Refused("OpCode-ErrorCode 0x%08x" % code, status=code)
    report["variables"] = wdsc.variables_json(variables)
    return None


class VerifyFailed(Exception):
    pass


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--protocol", choices=["ntlm", "negotiate", "negotiate-kerberos-first"],
                        default="ntlm")
    parser.add_argument("--namespace", default="ns")
    parser.add_argument("--object", default="a.bin")
    parser.add_argument("--tamper", choices=["header", "body", "trailer"])
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--windows-contexts", action="store_true")
    parser.add_argument("--verification-trailer", action="store_true")
    parser.add_argument("--request-fragment", type=int)
    parser.add_argument("--optimistic-token", choices=["junk", "none"], default="junk",
                        help="negotiate-kerberos-first: a token for the first mech, or none")
    parser.add_argument("--calls", type=int, default=1, help="calls on the one connection")
    args = parser.parse_args()
    try:
        code, report = run(args)
    except Refused as e:
        code, report = 5, {"ok": False, "kind": "refused", "error": str(e), "status": e.status}
    except VerifyFailed as e:
        code, report = 7, {"ok": False, "kind": "verify", "error": str(e)}
    except (ConnectionError, socket.timeout, OSError) as e:
        code, report = 4, {"ok": False, "kind": "connection", "error": "%s: %s" % (type(e).__name__, e)}
    except (dcerpc.RpcError, wdsc.WdscError, SpnegoError, ValueError) as e:
        code, report = 1, {"ok": False, "kind": "protocol", "error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(report, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
