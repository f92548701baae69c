"""WDS Control Protocol packets, the WdsRpcMessage stub and MS-WDSMSI UDP initiation, written
for the independent test peers from the specifications' field tables (MS-WDSC 2.2.1 and 6,
MS-WDSMSI 2.2.1 and 2.2.2) and the padding rule in README.md#pn-wdsc-padding. Nothing here is
taken from wdsmc's Rust code, so a misreading there shows up as a disagreement here.

Run as a script it performs one UDP initiation and prints the reply as JSON:
    wdsc.py udp HOST:PORT NAMESPACE OBJECT
exit 0 with {"ok": true, ...}, 5 with {"ok": false, "error_code": N} for an error reply,
6 when no reply came.
"""

import json
import socket
import struct
import sys
import uuid

# --- MS-WDSC 2.2.1 --------------------------------------------------------------------------

ENDPOINT_HEADER_SIZE = 0x28
OPERATION_HEADER_SIZE = 16
WDSC_VERSION = 0x0100
PACKET_REQUEST = 0x01
PACKET_REPLY = 0x02
NAME_BYTES = 66
BLOCK_FIXED = 80

VAR_BYTE = 0x0001
VAR_USHORT = 0x0002
VAR_ULONG = 0x0004
VAR_ULONG64 = 0x0008
VAR_STRING = 0x0010
VAR_WSTRING = 0x0020
VAR_BLOB = 0x0040
VAR_ARRAY = 0x1000

FIXED_SIZES = {VAR_BYTE: 1, VAR_USHORT: 2, VAR_ULONG: 4, VAR_ULONG64: 8}
FIXED_FORMATS = {VAR_BYTE: "<B", VAR_USHORT: "<H", VAR_ULONG: "<I", VAR_ULONG64: "<Q"}

# MS-WDSMSI 1.9: the multicast provider's endpoint GUID; MS-DTYP 2.3.4.2 packet form is what
# uuid.UUID.bytes_le gives (first three fields little-endian).
MULTICAST_ENDPOINT = uuid.UUID("6f13a317-3687-4b54-81a5-504daa9062fa").bytes_le
OP_INITIATE = 6

CAP_CHECKSUM = 0x1
CAP_IPV6 = 0x2
CAP_BOOT_DEVICE = 0x4

# WDSMCS_E_* (Windows SDK) and Win32 codes the peers use.
E_CONTENT_NOT_FOUND = 0xC1210103
E_NAMESPACE_NOT_FOUND = 0xC1210105
E_SECURITY_MODE = 0xC1210110
ERROR_ACCESS_DENIED = 5


class WdscError(ValueError):
    pass


def _padding(base_type, value_len):
    """Padding after a value (README.md#pn-wdsc-padding): up to the next multiple of 16, a full 16 when the
    block is already aligned, and 16 more for a STRING/WSTRING/BLOB left with under 4."""
    pad = 16 - (BLOCK_FIXED + value_len) % 16
    if base_type in (VAR_STRING, VAR_WSTRING, VAR_BLOB) and pad < 4:
        pad += 16
    return pad


def encode_value(var_type, value):
    """Value bytes for (type, python value)."""
    if var_type in FIXED_FORMATS:
        return struct.pack(FIXED_FORMATS[var_type], value)
    if var_type == VAR_WSTRING:
        return value.encode("utf-16-le") + b"\0\0"
    if var_type == VAR_STRING:
        return value.encode("latin-1") + b"\0"
    if var_type == VAR_BLOB:
        return bytes(value)
    raise WdscError("cannot encode variable type 0x%x" % var_type)


def encode_packet(packet_type, opcode_or_error, variables, endpoint=MULTICAST_ENDPOINT,
                  whole_size=False):
    """variables: list of (name, type, value). Endpoint Packet-Size carries the
    operation-header value (what tools known to work against Windows send) unless
    whole_size, which follows the MS-WDSC 2.2.1.1 text."""
    blocks = b""
    for name, var_type, value in variables:
        raw_name = name.encode("utf-16-le") + b"\0\0"
        if len(raw_name) > NAME_BYTES:
            raise WdscError("variable name %r is too long" % name)
        data = encode_value(var_type, value)
        block = raw_name.ljust(NAME_BYTES, b"\0") + b"\0\0"
        block += struct.pack("<III", var_type, len(data), 0) + data
        block += b"\0" * _padding(var_type, len(data))
        blocks += block
    op_size = OPERATION_HEADER_SIZE + len(blocks)
    ep_size = op_size + ENDPOINT_HEADER_SIZE if whole_size else op_size
    out = struct.pack("<HHI", ENDPOINT_HEADER_SIZE, WDSC_VERSION, ep_size)
    out += endpoint + b"\0" * 16
    out += struct.pack("<IHBBII", op_size, WDSC_VERSION, packet_type, 0, opcode_or_error,
                       len(variables))
    return out + blocks


def decode_packet(data):
    """Returns (endpoint, packet_type, opcode_or_error, {name: (type, value)}) with names as
    sent; lookups should go through get_var (names are case-insensitive)."""
    if len(data) < ENDPOINT_HEADER_SIZE + OPERATION_HEADER_SIZE:
        raise WdscError("packet of %d bytes is shorter than its headers" % len(data))
    hdr_size, version, ep_size = struct.unpack_from("<HHI", data, 0)
    if hdr_size != ENDPOINT_HEADER_SIZE or version != WDSC_VERSION:
        raise WdscError("endpoint header size 0x%x version 0x%x" % (hdr_size, version))
    endpoint = data[8:24]
    op_size, op_version, packet_type, _pad, code, count = struct.unpack_from(
        "<IHBBII", data, ENDPOINT_HEADER_SIZE)
    if op_version != WDSC_VERSION:
        raise WdscError("operation header version 0x%x" % op_version)
    if op_size < OPERATION_HEADER_SIZE or ENDPOINT_HEADER_SIZE + op_size > len(data):
        raise WdscError("operation Packet-Size %d does not fit %d bytes" % (op_size, len(data)))
    if ep_size not in (op_size, op_size + ENDPOINT_HEADER_SIZE):
        raise WdscError("endpoint Packet-Size %d vs operation %d" % (ep_size, op_size))
    end = ENDPOINT_HEADER_SIZE + op_size
    section = ENDPOINT_HEADER_SIZE + OPERATION_HEADER_SIZE
    at = section
    variables = {}
    for index in range(count):
        if index:
            # Extra zero chunks between blocks: a name never starts with a NUL unit.
            while at + 2 <= end and data[at:at + 2] == b"\0\0":
                at += 16
        if at + BLOCK_FIXED > end:
            raise WdscError("variable %d of %d runs past the packet" % (index + 1, count))
        raw_name = data[at:at + NAME_BYTES]
        units = [raw_name[i:i + 2] for i in range(0, NAME_BYTES, 2)]
        if b"\0\0" not in units:
            raise WdscError("variable name without NUL at offset %d" % at)
        name = b"".join(units[:units.index(b"\0\0")]).decode("utf-16-le")
        if not name:
            raise WdscError("empty variable name at offset %d" % at)
        var_type, value_len, array_size = struct.unpack_from("<III", data, at + 68)
        total = value_len * array_size if (var_type >> 16) & VAR_ARRAY or var_type & VAR_ARRAY \
            else value_len
        start = at + BLOCK_FIXED
        if start + total > end:
            raise WdscError("variable %s: %d value bytes run past the packet" % (name, total))
        raw = data[start:start + total]
        base = var_type & 0xFFFF
        if var_type >> 16 or base & VAR_ARRAY:
            value = raw
        elif base in FIXED_FORMATS:
            if len(raw) != FIXED_SIZES[base]:
                raise WdscError("variable %s: %d bytes for type 0x%x" % (name, len(raw), base))
            value = struct.unpack(FIXED_FORMATS[base], raw)[0]
        elif base == VAR_WSTRING:
            text = raw.decode("utf-16-le")
            value = text.split("\0", 1)[0]
        elif base == VAR_STRING:
            value = raw.split(b"\0", 1)[0].decode("latin-1")
        else:
            value = raw
        if any(n.upper() == name.upper() for n in variables):
            seen = get_var(variables, name)
            if seen != (var_type, value):
                raise WdscError("variable %s repeated with another value" % name)
        else:
            variables[name] = (var_type, value)
        used = BLOCK_FIXED + total
        at += used + (-used % 16)
    return endpoint, packet_type, code, variables


def get_var(variables, name, default=None):
    for key, value in variables.items():
        if key.upper() == name.upper():
            return value
    return default


def variables_json(variables):
    """Variables as JSON-friendly values: numbers, text, blobs as hex."""
    out = {}
    for name, (var_type, value) in variables.items():
        out[name] = value.hex() if isinstance(value, (bytes, bytearray)) else value
    return out


def initiate_request(namespace, content, client="WDSPEER", cap=CAP_CHECKSUM):
    variables = [
        ("Namespace", VAR_WSTRING, namespace),
        ("Content", VAR_WSTRING, content),
        ("Client", VAR_WSTRING, client),
    ]
    if cap is not None:
        variables.append(("Cap", VAR_ULONG, cap))
    return encode_packet(PACKET_REQUEST, OP_INITIATE, variables)


# --- MS-WDSOSD WDS_OP_IMG_ENUMERATE (2.2.6) --------------------------------------------------

OS_DEPLOYMENT_ENDPOINT = uuid.UUID("d8deeb5a-effd-43b2-99fc-1a8a5921c227").bytes_le
OP_IMG_ENUMERATE = 0x02
V1_FIELDS = ("XML", "PATH", "GROUP", "INDEX", "NAMESPACE", "NAMESPACE_SIZE", "RESOURCEFILEPATH")


def img_enumerate_request(cc=None):
    variables = [("VERSION", VAR_ULONG, 1)]
    if cc is not None:
        variables.append(("CC", VAR_ULONG, cc))
    return encode_packet(PACKET_REQUEST, OP_IMG_ENUMERATE, variables,
                         endpoint=OS_DEPLOYMENT_ENDPOINT)


def image_list_v1(variables):
    """The version 1 list: for n = 1, 2, ... the FIELD_n variables, until PATH_n is absent
    (the reading of MS-WDSOSD 2.2.6 the spec's example shows)."""
    images = []
    n = 1
    while get_var(variables, "PATH_%d" % n) is not None:
        entry = {}
        for field in V1_FIELDS:
            found = get_var(variables, "%s_%d" % (field, n))
            entry[field.lower()] = None if found is None else found[1]
        images.append(entry)
        n += 1
    return images


def xml_name(xml):
    start = xml.find("<NAME>")
    end = xml.find("</NAME>")
    if start < 0 or end < start:
        return None
    return (xml[start + 6:end].replace("&lt;", "<").replace("&gt;", ">")
            .replace("&amp;", "&").strip())


# --- WdsRpcMessage stub, NDR 2.0 (MS-WDSC 6) ------------------------------------------------

def ndr_request(packet):
    """[in] unsigned long uRequestPacketSize, [in, size_is(uRequestPacketSize)] byte[]."""
    return struct.pack("<II", len(packet), len(packet)) + packet


def ndr_parse_request(stub):
    if len(stub) < 8:
        raise WdscError("request stub of %d bytes" % len(stub))
    size, max_count = struct.unpack_from("<II", stub, 0)
    if max_count != size or 8 + size > len(stub):
        raise WdscError("request stub sizes %d/%d for %d bytes" % (size, max_count, len(stub)))
    return stub[8:8 + size]


def ndr_response(packet, status=0):
    """[out] unsigned long *puReplyPacketSize, [out, size_is(, *puReplyPacketSize)] byte **,
    then the return value. The inner pointer is a unique pointer: referent id 0 is NULL."""
    if packet is None:
        return struct.pack("<III", 0, 0, status)
    body = struct.pack("<III", len(packet), 0x00020000, len(packet)) + packet
    body += b"\0" * (-len(body) % 4)
    return body + struct.pack("<I", status)


def ndr_parse_response(stub):
    """Returns (packet or None, return value)."""
    if len(stub) < 12:
        raise WdscError("response stub of %d bytes" % len(stub))
    size, referent = struct.unpack_from("<II", stub, 0)
    if referent == 0:
        return None, struct.unpack_from("<I", stub, 8)[0]
    max_count = struct.unpack_from("<I", stub, 8)[0]
    if max_count != size:
        raise WdscError("reply size %d but conformance %d" % (size, max_count))
    end = 12 + size
    end += -end % 4
    if end + 4 > len(stub):
        raise WdscError("response stub of %d bytes, %d needed" % (len(stub), end + 4))
    return stub[12:12 + size], struct.unpack_from("<I", stub, end)[0]


# --- MS-WDSMSI 2.2.2: UDP initiation, network byte order --------------------------------------

MSI_OP_REQUEST = 0x01
MSI_OP_REPLY = 0x02
OPT_NAMESPACE = 0x0601
OPT_CONTENT = 0x0602
OPT_MAC_ADDRESS = 0x050C
OPT_MULTICAST_ADDR = 0x0503
OPT_SERVER_ADDR = 0x0504
OPT_MULTICAST_PORT = 0x0205
OPT_SERVER_PORT = 0x0206
OPT_CONTENT_SIZE = 0x0407
OPT_BLOCK_SIZE = 0x0309
OPT_TOTAL_BLOCKS = 0x0408
OPT_SESSION_ID = 0x030A
OPT_ERROR = 0x030B


def msi_request(namespace, content, mac=b"\x02\x00\x5e\x10\x20\x30"):
    options = [
        (OPT_NAMESPACE, namespace.encode("utf-16-le") + b"\0\0"),
        (OPT_CONTENT, content.encode("utf-16-le") + b"\0\0"),
        (OPT_MAC_ADDRESS, mac),
    ]
    out = struct.pack(">BH", MSI_OP_REQUEST, len(options))
    for option_id, value in options:
        out += struct.pack(">HH", option_id, len(value)) + value
    return out


def msi_parse_reply(data):
    """Returns a dict: the session (group, server, port, ...) or {"error_code": N}."""
    if len(data) < 3:
        raise WdscError("MSI datagram of %d bytes" % len(data))
    opcode, count = struct.unpack_from(">BH", data, 0)
    at = 3
    options = {}
    for _ in range(count):
        option_id, length = struct.unpack_from(">HH", data, at)
        options[option_id] = data[at + 4:at + 4 + length]
        at += 4 + length
        if at > len(data):
            raise WdscError("MSI option 0x%04x runs past the datagram" % option_id)
    if OPT_ERROR in options:
        return {"opcode": opcode, "error_code": struct.unpack(">I", options[OPT_ERROR])[0]}

    def address(raw):
        family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
        return socket.inet_ntop(family, raw)

    need = [OPT_MULTICAST_ADDR, OPT_SERVER_ADDR, OPT_MULTICAST_PORT, OPT_SERVER_PORT,
            OPT_CONTENT_SIZE, OPT_BLOCK_SIZE, OPT_TOTAL_BLOCKS, OPT_SESSION_ID]
    missing = [hex(o) for o in need if o not in options]
    if missing:
        raise WdscError("MSI reply lacks options %s" % ", ".join(missing))
    return {
        "opcode": opcode,
        "group": address(options[OPT_MULTICAST_ADDR]),
        "group_raw": options[OPT_MULTICAST_ADDR],
        "server": address(options[OPT_SERVER_ADDR]),
        "server_raw": options[OPT_SERVER_ADDR],
        "port": struct.unpack(">H", options[OPT_MULTICAST_PORT])[0],
        "server_port": struct.unpack(">H", options[OPT_SERVER_PORT])[0],
        "content_size": struct.unpack(">Q", options[OPT_CONTENT_SIZE])[0],
        "block_size": struct.unpack(">I", options[OPT_BLOCK_SIZE])[0],
        "total_blocks": struct.unpack(">Q", options[OPT_TOTAL_BLOCKS])[0],
        "session_id": struct.unpack(">I", options[OPT_SESSION_ID])[0],
    }


def udp_initiate(host, port, namespace, content, tries=5):
    """MS-WDSMSI 3.2: re-send after 1 s without a reply. Loopback only."""
    request = msi_request(namespace, content)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.0)
        for _ in range(tries):
            sock.sendto(request, (host, port))
            try:
                data, _peer = sock.recvfrom(2048)
            except socket.timeout:
                continue
            return msi_parse_reply(data)
    return None


def split_hostport(text):
    host, _, port = text.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("test peers talk to 127.0.0.1 only, not %r" % host)
    return "127.0.0.1", int(port)


def main():
    if len(sys.argv) != 5 or sys.argv[1] != "udp":
        print(__doc__, file=sys.stderr)
        return 2
    host, port = split_hostport(sys.argv[2])
    reply = udp_initiate(host, port, sys.argv[3], sys.argv[4])
    if reply is None:
        print(json.dumps({"ok": False, "error": "no reply"}))
        return 6
    printable = {k: v for k, v in reply.items() if not isinstance(v, bytes)}
    if "error_code" in reply:
        print(json.dumps(dict(printable, ok=False)))
        return 5
    print(json.dumps(dict(printable, ok=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
