"""An independent WDS RPC server for tests/rpc_peers.rs: DCE/RPC on raw sockets (dcerpc.py)
with pyspnego as the NTLM acceptor (auth_type 10) or SPNEGO acceptor (9), answering bind,
auth3 / alter_context and WdsRpcMessage with a WDSMC_OP_INITIATE reply (wdsc.py).

The multicast session is relayed: at start the peer asks a running `wdsmc serve` for the
object's session over UDP (MS-WDSMSI 2.2.2) and describes that session in its replies, with
SecMode 0x00030003 (the checksum both ways, as UDP-initiated sessions use) and a made-up
UserSid, so a client that logs in here downloads from the real multicast session.

Usage: rpc_server.py --users FILE [--kerberos] [--relay 127.0.0.1:PORT --namespace NS --object OBJ]
                     [--port PORT] [--fragment N] [--metadata-size N] [--whole-size]
                     [--fault STATUS | --return-error CODE | --op-error CODE | --silent]
                     [--quirk NAME]... [--epm-port PORT]

--epm-port also answers the endpoint mapper (ept_map, opnum 3 of e1af8308-5d1f-11c9-91a4-
08002b14a0fa v3, unauthenticated, C706 appendix L towers) on that port with this server's
RPC port for WdsRpcInterface over ncacn_ip_tcp.

Quirks, each legal and seen in one implementation or another, for the client to tolerate:
lower-names (reply variable names in lower case: names are case-insensitive),
alloc-hint-zero (alloc_hint 0 in every response fragment: it is only a hint),
no-sign-echo (bind_ack without PFC_SUPPORT_HEADER_SIGN; NTLM signs the header anyway),
pad16 (stub padded to 16 before the sec_trailer instead of 4),
empty-metadata (a zero-length ContentMetadata, as MS-WDSMSI 2.2.1 words it for content
without metadata; 3.1.5.2 and the 4.1 example leave the variable out).

--kerberos also accepts raw Kerberos (auth_type 0x10) with MIT's own GSS-API acceptor
(mitgss.py, DCE style, the keys from KRB5_KTNAME), its Wrap tokens made and checked by
gss_wrap_iov / gss_unwrap_iov with the RPC header and sec_trailer signed.

FILE holds pyspnego's NTLM_USER_FILE lines, DOMAIN:USER:PASSWORD. The first line on stdout
is "port N" once the listener is bound; log lines go to stderr. Runs until killed.
Loopback only.
"""

import argparse
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import spnego
except ImportError as e:  # pragma: no cover - depends on the environment
    print("pyspnego not importable: %s" % e, file=sys.stderr)
    sys.exit(3)

import dcerpc  # noqa: E402
import wdsc  # noqa: E402

AUTHN_GSS_KERBEROS = 0x10


class _Buf:
    def __init__(self, data):
        self.data = data


class _Result:
    def __init__(self, buffers):
        self.buffers = [_Buf(b) for b in buffers]


class MitAcceptor:
    """MIT's GSS-API acceptor behind the few calls Connection and dcerpc.Sealer make of a
    pyspnego context (step, complete, wrap_iov, unwrap_iov), buffers by position:
    [sign-only header, data, sign-only trailer, token]."""

    negotiated_protocol = "kerberos (MIT GSS-API, DCE style)"

    def __init__(self):
        from mitgss import Gss
        self.gss = Gss()
        self.complete = False
        self.client_principal = None
        self.signature_len = None

    def step(self, token):
        out, more = self.gss.accept(token)
        if not more:
            self.complete = True
            self.client_principal = self.gss.peer_name()
            # MIT's token length is the same for every message of a context.
            self.signature_len = self.gss.wrap_length(b"\0" * 24, b"\0" * 16, b"\0" * 8)
        return out

    def wrap_iov(self, buffers, encrypt=True):
        head, plain, trl = buffers[0][1], buffers[1][1], buffers[2][1]
        sealed, token = self.gss.wrap(head, plain, trl)
        return _Result([head, sealed, trl, token])

    def unwrap_iov(self, buffers):
        head, sealed, trl, token = (b[1] for b in buffers)
        return _Result([head, self.gss.unwrap(head, sealed, trl, token), trl, token])

MAX_RECV_FRAG = 4280
MIN_FRAG = 1432  # C706 MustRecvFragSize: the smallest max_xmit_frag a bind_ack may announce
DID_NOT_EXECUTE = 0x20
RESULT_ACCEPT = 0
RESULT_PROVIDER_REJECTION = 2
RESULT_NEGOTIATE_ACK = 3
REASON_ABSTRACT_NOT_SUPPORTED = 1
REASON_TRANSFER_NOT_SUPPORTED = 2
NAK_AUTH_TYPE_NOT_RECOGNIZED = 8
SEC_MODE_CHECKSUM_BOTH = 0x00030003
# S-1-5-21-111-222-333-1001 (MS-DTYP 2.4.2.2): made up; the peer has no directory.
FAKE_SID = bytes([1, 5, 0, 0, 0, 0, 0, 5]) + struct.pack("<5I", 21, 111, 222, 333, 1001)


EPT_MAP = 3
EPT_S_NOT_REGISTERED = 0x16C9A0D6
TOWER_UUID = 0x0D
TOWER_RPC_CO = 0x0B
TOWER_TCP = 0x07
TOWER_IP = 0x09


def tower_bytes(floors):
    """C706 appendix L: floor count, then each floor's lhs and rhs with 16-bit lengths, all
    little-endian except the port and address in the rhs."""
    out = struct.pack("<H", len(floors))
    for lhs, rhs in floors:
        out += struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs
    return out


def parse_tower(data):
    (count,) = struct.unpack_from("<H", data, 0)
    at, floors = 2, []
    for _ in range(count):
        (n,) = struct.unpack_from("<H", data, at)
        lhs = data[at + 2:at + 2 + n]
        at += 2 + n
        (n,) = struct.unpack_from("<H", data, at)
        rhs = data[at + 2:at + 2 + n]
        at += 2 + n
        floors.append((lhs, rhs))
    return floors


def wds_tower(port):
    def syntax_floor(syntax):
        guid, major, minor = syntax
        return (bytes([TOWER_UUID]) + guid + struct.pack("<H", major), struct.pack("<H", minor))

    return tower_bytes([
        syntax_floor(dcerpc.WDS_INTERFACE),
        syntax_floor(dcerpc.NDR_SYNTAX),
        (bytes([TOWER_RPC_CO]), struct.pack("<H", 0)),
        (bytes([TOWER_TCP]), struct.pack(">H", port)),
        (bytes([TOWER_IP]), socket.inet_aton("127.0.0.1")),
    ])


def ept_map_request_floors(stub):
    """[in, ptr] uuid_p_t object, [in, ptr] twr_p_t map_tower, [in, out] context handle,
    [in] unsigned32 max_towers: the map tower's floors."""
    at = 0
    (referent,) = struct.unpack_from("<I", stub, at)
    at += 4 + (16 if referent else 0)
    (referent,) = struct.unpack_from("<I", stub, at)
    at += 4
    if not referent:
        return []
    max_count, length = struct.unpack_from("<II", stub, at)
    if max_count != length:
        raise wdsc.WdscError("tower conformance %d, length %d" % (max_count, length))
    return parse_tower(stub[at + 8:at + 8 + length])


def ept_map_response(towers, status, max_towers=4):
    """[in, out] context handle, [out] num_towers, [out, ptr, size_is(max_towers),
    length_is(*num_towers)] twr_p_t towers[], [out] error_status_t status."""
    out = b"\0" * 20 + struct.pack("<I", len(towers))
    out += struct.pack("<III", max_towers, 0, len(towers))
    out += b"".join(struct.pack("<I", 0x00030000 + i) for i in range(len(towers)))
    for t in towers:
        out += struct.pack("<II", len(t), len(t)) + t
        out += b"\0" * (-len(out) % 4)
    return out + struct.pack("<I", status)


def log(message):
    print("rpc_server: %s" % message, file=sys.stderr, flush=True)


def parse_code(text):
    return int(text, 0)


class Connection:
    def __init__(self, sock, peer, args, session, epm_answer=None):
        self.epm_answer = epm_answer  # the RPC port, when this is an endpoint mapper connection
        self.sock = sock
        self.peer = peer
        self.args = args
        self.session = session
        self.ctx = None
        self.auth_type = None
        self.context_id = None
        self.sealer = None
        self.auth_failed = None
        self.max_xmit = MAX_RECV_FRAG
        self.inbound = None

    def send(self, data):
        self.sock.sendall(data)

    def fault(self, call_id, status, flags=0):
        log("%s: fault 0x%08x for call %d" % (self.peer, status, call_id))
        self.send(dcerpc.build_pdu(dcerpc.FAULT, dcerpc.PFC_FIRST_FRAG | dcerpc.PFC_LAST_FRAG | flags,
                                   call_id, dcerpc.fault_body(status)))

    def run(self):
        try:
            if self.args.silent and self.epm_answer is None:
                while self.sock.recv(65536):
                    pass
                return
            while True:
                try:
                    pdu = dcerpc.Pdu(dcerpc.read_pdu(self.sock, MAX_RECV_FRAG))
                except EOFError:
                    return
                if not self.handle(pdu):
                    return
        except (OSError, dcerpc.RpcError, wdsc.WdscError, struct.error) as e:
            log("%s: connection ends: %s: %s" % (self.peer, type(e).__name__, e))
        finally:
            self.sock.close()

    # --- presentation and security contexts --------------------------------------------------

    def results(self, bind):
        out = []
        for _cid, abstract, transfers in bind["contexts"]:
            if any(t[0][:8] == dcerpc.BIND_TIME_FEATURE_PREFIX for t in transfers):
                out.append((RESULT_NEGOTIATE_ACK, 0, (b"\0" * 16, 0, 0)))
            elif abstract != (dcerpc.EPM_INTERFACE if self.epm_answer else dcerpc.WDS_INTERFACE):
                out.append((RESULT_PROVIDER_REJECTION, REASON_ABSTRACT_NOT_SUPPORTED,
                            (b"\0" * 16, 0, 0)))
            elif dcerpc.NDR_SYNTAX in transfers:
                out.append((RESULT_ACCEPT, 0, dcerpc.NDR_SYNTAX))
            else:
                out.append((RESULT_PROVIDER_REJECTION, REASON_TRANSFER_NOT_SUPPORTED,
                            (b"\0" * 16, 0, 0)))
        return out

    def step(self, token):
        """One acceptor step; None when pyspnego refused the token."""
        try:
            out = self.ctx.step(token)
        except Exception as e:  # noqa: BLE001 - pyspnego's refusals have several types
            log("%s: %s refused the token: %s: %s" % (self.peer, self.ctx.__class__.__name__,
                                                       type(e).__name__, e))
            return None
        if self.ctx.complete:
            log("%s: logged in as %s (%s)" % (self.peer, self.ctx.client_principal,
                                              self.ctx.negotiated_protocol))
            align = 16 if "pad16" in self.args.quirk else 4
            self.sealer = dcerpc.Sealer(self.ctx, self.auth_type, self.context_id, align=align)
        return out or b""

    def handle(self, pdu):
        leg_flags = dcerpc.PFC_FIRST_FRAG | dcerpc.PFC_LAST_FRAG | (
            pdu.flags & dcerpc.PFC_SUPPORT_HEADER_SIGN)
        if pdu.ptype in (dcerpc.BIND, dcerpc.ALTER_CONTEXT):
            bind = dcerpc.parse_bind(pdu.body)
            alter = pdu.ptype == dcerpc.ALTER_CONTEXT
            token = b""
            if pdu.trailer is not None:
                if not alter:
                    self.auth_type = pdu.trailer["auth_type"]
                    self.context_id = pdu.trailer["context_id"]
                    if self.auth_type == dcerpc.AUTHN_WINNT:
                        self.ctx = spnego.server(protocol="ntlm",
                                                 options=spnego.NegotiateOptions.use_ntlm)
                    elif self.auth_type == dcerpc.AUTHN_GSS_NEGOTIATE:
                        self.ctx = spnego.server(protocol="negotiate",
                                                 options=spnego.NegotiateOptions.use_negotiate)
                    elif self.auth_type == AUTHN_GSS_KERBEROS and self.args.kerberos:
                        self.ctx = MitAcceptor()
                    else:
                        log("%s: auth_type %d not offered" % (self.peer, self.auth_type))
                        self.send(dcerpc.build_pdu(dcerpc.BIND_NAK, 0x03, pdu.call_id,
                                                   dcerpc.bind_nak_body(NAK_AUTH_TYPE_NOT_RECOGNIZED)))
                        return False
                elif self.ctx is None or pdu.trailer["auth_type"] != self.auth_type:
                    self.fault(pdu.call_id, dcerpc.STATUS_PROTO_ERROR)
                    return False
                token = self.step(pdu.auth_value)
                if token is None:
                    # A refused SPNEGO leg: a fault, never silence (README.md#pn-rpc-refusals).
                    self.fault(pdu.call_id, dcerpc.STATUS_ACCESS_DENIED, DID_NOT_EXECUTE)
                    return False
            if "no-sign-echo" in self.args.quirk:
                leg_flags &= ~dcerpc.PFC_SUPPORT_HEADER_SIGN
            if not alter:
                if self.args.fragment:
                    self.max_xmit = max(self.args.fragment, MIN_FRAG)
                else:
                    self.max_xmit = min(bind["max_recv"], MAX_RECV_FRAG)
            port = str(self.sock.getsockname()[1])
            body = dcerpc.bind_ack_body(self.max_xmit, MAX_RECV_FRAG,
                                        bind["assoc_group"] or 0x1234,
                                        "" if alter else port, self.results(bind))
            auth = None
            if pdu.trailer is not None:
                auth = (self.auth_type, pdu.trailer["auth_level"], self.context_id, token)
            ptype = dcerpc.ALTER_CONTEXT_RESP if alter else dcerpc.BIND_ACK
            self.send(dcerpc.build_pdu(ptype, leg_flags, pdu.call_id, body, auth))
            return True
        if pdu.ptype == dcerpc.AUTH3:
            if self.ctx is None or pdu.trailer is None:
                self.fault(pdu.call_id, dcerpc.STATUS_PROTO_ERROR)
                return False
            if self.step(pdu.auth_value) is None or not self.ctx.complete:
                # auth3 has no answer: the next request gets the fault.
                self.auth_failed = pdu.call_id
            return True
        if pdu.ptype == dcerpc.REQUEST:
            return self.request(pdu)
        log("%s: unexpected %s" % (self.peer, pdu.name))
        self.fault(pdu.call_id, dcerpc.STATUS_PROTO_ERROR)
        return False

    # --- calls -----------------------------------------------------------------------------

    def request(self, pdu):
        if self.epm_answer is not None:
            return self.epm_request(pdu)
        if self.auth_failed is not None or self.sealer is None:
            self.fault(pdu.call_id, dcerpc.STATUS_ACCESS_DENIED, DID_NOT_EXECUTE)
            return False
        fixed = 24 if pdu.flags & dcerpc.PFC_OBJECT_UUID else 8
        try:
            chunk = self.sealer.open_pdu(pdu, fixed)
        except Exception as e:  # noqa: BLE001 - pyspnego's verification errors
            log("%s: request failed verification: %s: %s" % (self.peer, type(e).__name__, e))
            self.fault(pdu.call_id, dcerpc.STATUS_SEC_PKG_ERROR)
            return False
        _hint, context_id, opnum = struct.unpack_from("<IHH", pdu.body, 0)
        if pdu.flags & dcerpc.PFC_FIRST_FRAG:
            self.inbound = b""
        if self.inbound is None:
            self.fault(pdu.call_id, dcerpc.STATUS_PROTO_ERROR)
            return False
        self.inbound += chunk
        if not pdu.flags & dcerpc.PFC_LAST_FRAG:
            return True
        stub, self.inbound = self.inbound, None
        if opnum != 0:
            self.fault(pdu.call_id, dcerpc.STATUS_OP_RNG_ERROR)
            return True
        if self.args.fault is not None:
            self.fault(pdu.call_id, self.args.fault)
            return True
        if self.args.return_error is not None:
            reply = wdsc.ndr_response(None, self.args.return_error)
        else:
            reply = wdsc.ndr_response(self.initiate(wdsc.ndr_parse_request(stub)))
        self.respond(pdu.call_id, context_id, reply)
        return True

    def epm_request(self, pdu):
        """ept_map on an unauthenticated connection: one unfragmented request."""
        if pdu.trailer is not None or pdu.flags & 0x03 != 0x03:
            self.fault(pdu.call_id, dcerpc.STATUS_PROTO_ERROR)
            return False
        _hint, context_id, opnum = struct.unpack_from("<IHH", pdu.body, 0)
        if opnum != EPT_MAP:
            self.fault(pdu.call_id, dcerpc.STATUS_OP_RNG_ERROR)
            return True
        floors = ept_map_request_floors(pdu.body[8:])
        log("%s: ept_map for %s" % (self.peer, floors[0][0][1:17].hex() if floors else None))
        wanted = floors[0][0] if floors else b""
        if wanted[:1] == b"\x0d" and wanted[1:17] == dcerpc.WDS_INTERFACE[0]:
            stub = ept_map_response([wds_tower(self.epm_answer)], 0)
        else:
            stub = ept_map_response([], EPT_S_NOT_REGISTERED)
        body = dcerpc.response_fixed(len(stub), context_id) + stub
        self.send(dcerpc.build_pdu(dcerpc.RESPONSE, 0x03, pdu.call_id, body))
        return True

    def initiate(self, packet):
        def error(code):
            log("%s: INITIATE answered with OpCode-ErrorCode 0x%08x" % (self.peer, code))
            return wdsc.encode_packet(wdsc.PACKET_REPLY, code, [])

        if self.args.op_error is not None:
            return error(self.args.op_error)
        endpoint, _ptype, opcode, variables = wdsc.decode_packet(packet)
        if endpoint != wdsc.MULTICAST_ENDPOINT or opcode != wdsc.OP_INITIATE:
            return error(0xC1210102)  # WDSMCS_E_INCOMPATIBLE_VERSION
        namespace = wdsc.get_var(variables, "Namespace", (0, None))[1]
        content = wdsc.get_var(variables, "Content", (0, None))[1]
        client = wdsc.get_var(variables, "Client", (0, None))[1]
        cap = wdsc.get_var(variables, "Cap", (0, 0))[1]
        log("%s: INITIATE %r %r from client %r, Cap 0x%x" % (self.peer, namespace, content, client, cap))
        s = self.session
        if s is None or namespace != self.args.namespace:
            return error(wdsc.E_NAMESPACE_NOT_FOUND)
        if content != self.args.object:
            return error(wdsc.E_CONTENT_NOT_FOUND)
        if not cap & wdsc.CAP_CHECKSUM:
            return error(wdsc.E_SECURITY_MODE)
        # Another order than wdsmc's own server sends; names as MS-WDSMSI 2.2.1 spells them.
        variables = [
            ("SessionId", wdsc.VAR_ULONG, s["session_id"]),
            ("TpMcAddress.Address", wdsc.VAR_BLOB, s["group_raw"]),
            ("TpMcAddress.Port", wdsc.VAR_ULONG, s["port"]),
            ("TpUniAddress.Address", wdsc.VAR_BLOB, s["server_raw"]),
            ("TpUniAddress.Port", wdsc.VAR_ULONG, s["server_port"]),
            ("BlockSize", wdsc.VAR_ULONG, s["block_size"]),
            ("TotalBlocks", wdsc.VAR_ULONG64, s["total_blocks"]),
            ("ContentSize", wdsc.VAR_ULONG64, s["content_size"]),
        ]
        if "empty-metadata" in self.args.quirk:
            variables.append(("ContentMetadata", wdsc.VAR_BLOB, b""))
        elif self.args.metadata_size:
            variables.append(("ContentMetadata", wdsc.VAR_BLOB,
                              bytes(i % 251 for i in range(self.args.metadata_size))))
        variables += [
            ("SecMode", wdsc.VAR_ULONG, SEC_MODE_CHECKSUM_BOTH),
            ("UserSid", wdsc.VAR_BLOB, FAKE_SID),
        ]
        if "lower-names" in self.args.quirk:
            variables = [(name.lower(), t, v) for name, t, v in variables]
        return wdsc.encode_packet(wdsc.PACKET_REPLY, 0, variables, whole_size=self.args.whole_size)

    def respond(self, call_id, context_id, stub):
        size = self.args.fragment or self.max_xmit
        overhead = dcerpc.HEADER_LEN + 8 + dcerpc.TRAILER_LEN + self.sealer.sig_len
        # Chunks are multiples of 16 but the last; its padding to 4 before the sec_trailer
        # still fits `size`.
        chunks = dcerpc.fragments(stub, size, overhead)
        sent = 0
        for i, chunk in enumerate(chunks):
            flags = (dcerpc.PFC_FIRST_FRAG if i == 0 else 0) | (
                dcerpc.PFC_LAST_FRAG if i == len(chunks) - 1 else 0)
            hint = 0 if "alloc-hint-zero" in self.args.quirk else len(stub) - sent
            fixed = dcerpc.response_fixed(hint, context_id)
            sent += len(chunk)
            pdu = self.sealer.seal_pdu(dcerpc.RESPONSE, flags, call_id, fixed, chunk)
            assert len(pdu) <= size, (len(pdu), size)
            self.send(pdu)
        log("%s: response of %d stub bytes in %d fragment(s) of at most %d bytes"
            % (self.peer, len(stub), len(chunks), size))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", required=True, help="DOMAIN:USER:PASSWORD lines")
    parser.add_argument("--kerberos", action="store_true",
                        help="also accept auth_type 0x10 with MIT's GSS-API (KRB5_KTNAME)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--relay", help="127.0.0.1:PORT of a wdsmc serve (its UDP MSI port)")
    parser.add_argument("--namespace", default="ns")
    parser.add_argument("--object", default="a.bin")
    parser.add_argument("--fragment", type=int, help="response fragments of at most N bytes")
    parser.add_argument("--metadata-size", type=int, default=0,
                        help="add a ContentMetadata blob of N bytes to the reply")
    parser.add_argument("--whole-size", action="store_true",
                        help="endpoint Packet-Size as MS-WDSC 2.2.1.1 words it (whole packet)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fault", type=parse_code, help="answer the call with a fault PDU")
    mode.add_argument("--return-error", type=parse_code,
                      help="WdsRpcMessage returns CODE with a NULL reply")
    mode.add_argument("--op-error", type=parse_code, help="reply with OpCode-ErrorCode CODE")
    mode.add_argument("--silent", action="store_true", help="accept, read, never answer")
    parser.add_argument("--epm-port", type=int, help="also answer ept_map on this port")
    parser.add_argument("--quirk", action="append", default=[],
                        choices=["lower-names", "alloc-hint-zero", "no-sign-echo", "pad16",
                                 "empty-metadata"])
    args = parser.parse_args()
    if args.fragment is not None and args.fragment < 64:
        parser.error("--fragment below 64 leaves no room for stub data")
    os.environ["NTLM_USER_FILE"] = os.path.abspath(args.users)

    session = None
    if args.relay:
        host, port = wdsc.split_hostport(args.relay)
        session = wdsc.udp_initiate(host, port, args.namespace, args.object)
        if session is None:
            log("no answer from wdsmc serve at %s" % args.relay)
            return 1
        if "error_code" in session:
            log("wdsmc serve refused %s/%s: 0x%08x" % (args.namespace, args.object,
                                                        session["error_code"]))
            return 1
        log("relaying session 0x%08x: %s:%d from %s, %d bytes in %d blocks of %d" % (
            session["session_id"], session["group"], session["port"], session["server"],
            session["content_size"], session["total_blocks"], session["block_size"]))

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(16)
    port = listener.getsockname()[1]
    if args.epm_port is not None:
        mapper = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        mapper.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        mapper.bind(("127.0.0.1", args.epm_port))
        mapper.listen(16)
        threading.Thread(target=serve, args=(mapper, args, session, port), daemon=True).start()
    print("port %d" % port, flush=True)
    serve(listener, args, session, None)


def serve(listener, args, session, epm_answer):
    while True:
        sock, peer = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock, "%s:%d" % peer, args, session, epm_answer)
        threading.Thread(target=conn.run, daemon=True).start()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
