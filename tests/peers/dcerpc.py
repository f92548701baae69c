"""Connection-oriented DCE/RPC 5.0 PDUs on raw sockets (C706 12.6, MS-RPCE 2.2.2), for the
test peers spnego_client.py and rpc_server.py, with pyspnego doing the security: tokens in
the sec_trailer's auth_value and, at packet privacy, wrap_iov / unwrap_iov with header
signing (header and sec_trailer signed, stub and padding sealed). Written from the
specifications for these tests; it shares no code with wdsmc.
"""

import socket
import struct
import uuid

# PTYPE (C706 12.6.4.x)
REQUEST = 0
RESPONSE = 2
FAULT = 3
BIND = 11
BIND_ACK = 12
BIND_NAK = 13
ALTER_CONTEXT = 14
ALTER_CONTEXT_RESP = 15
AUTH3 = 16
SHUTDOWN = 17

PTYPE_NAMES = {
    REQUEST: "request", RESPONSE: "response", FAULT: "fault", BIND: "bind",
    BIND_ACK: "bind_ack", BIND_NAK: "bind_nak", ALTER_CONTEXT: "alter_context",
    ALTER_CONTEXT_RESP: "alter_context_resp", AUTH3: "auth3", SHUTDOWN: "shutdown",
}

PFC_FIRST_FRAG = 0x01
PFC_LAST_FRAG = 0x02
PFC_SUPPORT_HEADER_SIGN = 0x04
PFC_OBJECT_UUID = 0x80

AUTHN_GSS_NEGOTIATE = 0x09
AUTHN_WINNT = 0x0A
AUTHN_LEVEL_PKT_PRIVACY = 6

DREP = b"\x10\x00\x00\x00"
HEADER_LEN = 16
TRAILER_LEN = 8
SIGNATURE_LEN = 16  # NTLM, also inside SPNEGO

WDS_INTERFACE = (uuid.UUID("1a927394-352e-4553-ae3f-7cf4aafca620").bytes_le, 1, 0)
NDR_SYNTAX = (uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le, 2, 0)
EPM_INTERFACE = (uuid.UUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa").bytes_le, 3, 0)
NDR64_SYNTAX = (uuid.UUID("71710533-beba-4937-8319-b5dbef9ccc36").bytes_le, 1, 0)
BIND_TIME_FEATURE_PREFIX = uuid.UUID("6cb71c2c-9812-4540-0000-000000000000").bytes_le[:8]
# MS-RPCE 3.3.1.5.3: 6cb71c2c-9812-4540-XXXX-..., the feature bits in the fourth field:
# security context multiplexing (1) and keeping the connection on orphan (2).
BIND_TIME_FEATURES = (uuid.UUID("6cb71c2c-9812-4540-0300-000000000000").bytes_le, 1, 0)

STATUS_ACCESS_DENIED = 0x00000005
STATUS_SEC_PKG_ERROR = 0x00000721
STATUS_OP_RNG_ERROR = 0x1C010002
STATUS_PROTO_ERROR = 0x1C01000B


class RpcError(Exception):
    """A protocol-level failure: the peer refused (fault / bind_nak) or sent nonsense."""

    def __init__(self, message, kind="protocol", status=None):
        super().__init__(message)
        self.kind = kind
        self.status = status


def syntax_bytes(syntax):
    guid, major, minor = syntax
    return guid + struct.pack("<HH", major, minor)


def parse_syntax(data, at):
    guid = data[at:at + 16]
    major, minor = struct.unpack_from("<HH", data, at + 16)
    return (guid, major, minor)


# --- framing ---------------------------------------------------------------------------------

def recv_exact(sock, count):
    out = b""
    while len(out) < count:
        chunk = sock.recv(count - len(out))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(out), count))
        out += chunk
    return out


def read_pdu(sock, max_len=65535):
    header = recv_exact(sock, HEADER_LEN)
    frag_len = struct.unpack_from("<H", header, 8)[0]
    if header[0] != 5 or header[1] != 0:
        raise RpcError("not DCE/RPC 5.0: version %d.%d" % (header[0], header[1]))
    if header[4] & 0xF0 != 0x10:
        raise RpcError("only little-endian data representation is handled")
    if frag_len < HEADER_LEN or frag_len > max_len:
        raise RpcError("frag_length %d outside 16..%d" % (frag_len, max_len))
    return header + recv_exact(sock, frag_len - HEADER_LEN)


class Pdu:
    """A received PDU split into its parts (body = what follows the common header, without
    the sec_trailer and auth_value)."""

    def __init__(self, data):
        self.data = data
        (self.vers, self.minor, self.ptype, self.flags, self.drep, self.frag_len,
         self.auth_len, self.call_id) = struct.unpack_from("<BBBB4sHHI", data, 0)
        if self.frag_len != len(data):
            raise RpcError("frag_length %d for %d bytes" % (self.frag_len, len(data)))
        self.trailer = None
        self.auth_value = b""
        end = len(data)
        if self.auth_len:
            at = len(data) - self.auth_len - TRAILER_LEN
            if at < HEADER_LEN:
                raise RpcError("auth_length %d does not fit %d bytes" % (self.auth_len, len(data)))
            self.trailer_at = at
            (auth_type, auth_level, pad_len, _reserved,
             context_id) = struct.unpack_from("<BBBBI", data, at)
            self.trailer = {"auth_type": auth_type, "auth_level": auth_level,
                            "pad_len": pad_len, "context_id": context_id}
            self.auth_value = data[at + TRAILER_LEN:]
            end = at
        self.body = data[HEADER_LEN:end]

    @property
    def name(self):
        return PTYPE_NAMES.get(self.ptype, "ptype %d" % self.ptype)


def header(ptype, flags, frag_len, auth_len, call_id):
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, DREP, frag_len, auth_len, call_id)


def trailer(auth_type, auth_level, pad_len, context_id):
    return struct.pack("<BBBBI", auth_type, auth_level, pad_len, 0, context_id)


def build_pdu(ptype, flags, call_id, body, auth=None, align=4):
    """auth = (auth_type, auth_level, context_id, auth_value): the body is padded so the
    sec_trailer starts on an `align`-byte boundary of the PDU."""
    if auth is None:
        return header(ptype, flags, HEADER_LEN + len(body), 0, call_id) + body
    auth_type, auth_level, context_id, value = auth
    pad = -(HEADER_LEN + len(body)) % align
    body += b"\0" * pad
    frag_len = HEADER_LEN + len(body) + TRAILER_LEN + len(value)
    return (header(ptype, flags, frag_len, len(value), call_id) + body
            + trailer(auth_type, auth_level, pad, context_id) + value)


# --- bind, bind_ack, bind_nak, auth3 ----------------------------------------------------------

def bind_body(contexts, max_xmit=4280, max_recv=4280, assoc_group=0):
    """contexts: list of (context_id, abstract syntax, [transfer syntaxes])."""
    out = struct.pack("<HHIBBH", max_xmit, max_recv, assoc_group, len(contexts), 0, 0)
    for context_id, abstract, transfers in contexts:
        out += struct.pack("<HBB", context_id, len(transfers), 0) + syntax_bytes(abstract)
        for t in transfers:
            out += syntax_bytes(t)
    return out


def parse_bind(body):
    max_xmit, max_recv, assoc, count = struct.unpack_from("<HHIB", body, 0)
    at = 12
    contexts = []
    for _ in range(count):
        context_id, n_transfer = struct.unpack_from("<HB", body, at)
        abstract = parse_syntax(body, at + 4)
        at += 24
        transfers = []
        for _ in range(n_transfer):
            transfers.append(parse_syntax(body, at))
            at += 20
        contexts.append((context_id, abstract, transfers))
    return {"max_xmit": max_xmit, "max_recv": max_recv, "assoc_group": assoc,
            "contexts": contexts}


def bind_ack_body(max_xmit, max_recv, assoc_group, secondary, results):
    """results: list of (result, reason, transfer syntax). The secondary address is a
    NUL-terminated port string; the result list starts on a 4-byte boundary of the PDU."""
    sec = secondary.encode("ascii") + b"\0" if secondary else b""
    out = struct.pack("<HHIH", max_xmit, max_recv, assoc_group, len(sec)) + sec
    out += b"\0" * (-(HEADER_LEN + len(out)) % 4)
    out += struct.pack("<BBH", len(results), 0, 0)
    for result, reason, transfer in results:
        out += struct.pack("<HH", result, reason) + syntax_bytes(transfer)
    return out


def parse_bind_ack(body):
    max_xmit, max_recv, assoc, sec_len = struct.unpack_from("<HHIH", body, 0)
    at = 10 + sec_len
    at += -(HEADER_LEN + at) % 4
    count = body[at]
    at += 4
    results = []
    for _ in range(count):
        result, reason = struct.unpack_from("<HH", body, at)
        results.append((result, reason, parse_syntax(body, at + 4)))
        at += 24
    return {"max_xmit": max_xmit, "max_recv": max_recv, "assoc_group": assoc,
            "secondary": body[10:10 + sec_len].rstrip(b"\0").decode("ascii", "replace"),
            "results": results}


def bind_nak_body(reason):
    return struct.pack("<HBBB", reason, 1, 5, 0)


# --- request, response, fault -----------------------------------------------------------------

def fault_body(status, context_id=0):
    return struct.pack("<IHBBII", 0, context_id, 0, 0, status, 0)


def parse_fault(body):
    if len(body) < 12:
        raise RpcError("fault body of %d bytes" % len(body))
    return struct.unpack_from("<I", body, 8)[0]


class Sealer:
    """Packet privacy with pyspnego: wrap_iov over [header (sign only), stub + padding
    (sealed), sec_trailer (sign only), signature]."""

    def __init__(self, ctx, auth_type, context_id, align=16):
        from spnego.iov import BufferType  # imported late: the caller checks pyspnego first
        self.ctx = ctx
        self.auth_type = auth_type
        self.context_id = context_id
        self.align = align
        self.types = BufferType
        # NTLM's 16 bytes, or what the context says (mitgss's Kerberos acceptor).
        self.sig_len = getattr(ctx, "signature_len", SIGNATURE_LEN)

    def seal_pdu(self, ptype, flags, call_id, fixed, stub):
        """fixed: the 8 (or 24) bytes after the common header (alloc_hint, ids)."""
        pad = -len(stub) % self.align
        plain = stub + b"\0" * pad
        frag_len = HEADER_LEN + len(fixed) + len(plain) + TRAILER_LEN + self.sig_len
        head = header(ptype, flags, frag_len, self.sig_len, call_id) + fixed
        trl = trailer(self.auth_type, AUTHN_LEVEL_PKT_PRIVACY, pad, self.context_id)
        t = self.types
        res = self.ctx.wrap_iov([(t.sign_only, head), (t.data, plain), (t.sign_only, trl),
                                 t.header], encrypt=True)
        sealed, signature = res.buffers[1].data, res.buffers[3].data
        if len(signature) != self.sig_len:
            raise RpcError("the context gave a %d-byte signature" % len(signature))
        return head + sealed + trl + signature

    def open_pdu(self, pdu, fixed_len, tamper=None):
        """Verifies and unseals a request/response fragment; returns its stub (padding
        removed). tamper: flip one byte of 'header', 'body' or 'trailer' first (tests)."""
        if pdu.trailer is None:
            raise RpcError("%s without a verifier at packet privacy" % pdu.name)
        tr = pdu.trailer
        if (tr["auth_type"], tr["auth_level"], tr["context_id"]) != (
                self.auth_type, AUTHN_LEVEL_PKT_PRIVACY, self.context_id):
            raise RpcError("verifier for %r, expected type %d level 6 context %d"
                           % (tr, self.auth_type, self.context_id))
        data = bytearray(pdu.data)
        stub_at = HEADER_LEN + fixed_len
        if tamper == "header":
            data[HEADER_LEN] ^= 0x01  # alloc_hint: covered by header signing only
        elif tamper == "body":
            data[stub_at] ^= 0x01
        elif tamper == "trailer":
            data[pdu.trailer_at + 3] ^= 0x01  # auth_reserved
        head = bytes(data[:stub_at])
        sealed = bytes(data[stub_at:pdu.trailer_at])
        trl = bytes(data[pdu.trailer_at:pdu.trailer_at + TRAILER_LEN])
        signature = bytes(data[pdu.trailer_at + TRAILER_LEN:])
        if tr["pad_len"] > len(sealed):
            raise RpcError("auth_pad_length %d exceeds the %d-byte stub" % (tr["pad_len"], len(sealed)))
        t = self.types
        res = self.ctx.unwrap_iov([(t.sign_only, head), (t.data, sealed), (t.sign_only, trl),
                                   (t.header, signature)])
        plain = res.buffers[1].data
        return plain[:len(plain) - tr["pad_len"]]


def verification_trailer(header_signing=True):
    """MS-RPCE 2.2.2.13: the signature, then one SEC_VT_COMMAND_BITMASK_1 command that is
    also the last (SEC_VT_COMMAND_END)."""
    signature = bytes([0x8A, 0xE3, 0x13, 0x71, 0x02, 0xF4, 0x36, 0x71])
    command = 0x0001 | 0x4000
    return signature + struct.pack("<HHI", command, 4, 1 if header_signing else 0)


def request_fixed(alloc_hint, context_id, opnum):
    return struct.pack("<IHH", alloc_hint, context_id, opnum)


def response_fixed(alloc_hint, context_id):
    return struct.pack("<IHBB", alloc_hint, context_id, 0, 0)


def fragments(stub, max_frag, overhead, align=16):
    """Cuts a stub into chunks so each fragment fits max_frag with `overhead` bytes of
    header, fixed fields, trailer and signature; chunks stay multiples of `align`."""
    room = (max_frag - overhead) // align * align
    if room <= 0:
        raise ValueError("%d-byte fragments leave no room for stub data" % max_frag)
    chunks = [stub[i:i + room] for i in range(0, len(stub), room)] or [b""]
    return chunks


def connect(port, timeout):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
