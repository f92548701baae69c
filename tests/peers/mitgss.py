"""MIT Kerberos's GSS-API (libgssapi_krb5) through ctypes, for the test peers
mit_gss_client.py and rpc_server.py --kerberos: DCE-style contexts (GSS_C_DCE_STYLE), both
initiator and acceptor, and gss_wrap_iov / gss_unwrap_iov with SIGN_ONLY buffers (the RPC
header and sec_trailer) as DCE/RPC uses them at packet privacy. The keys come from MIT's
usual places: KRB5CCNAME for an initiator, KRB5_KTNAME for an acceptor, KRB5_CONFIG for
the realm. Written for these tests; it shares no code with wdsmc.
"""

import ctypes
import ctypes.util

# RFC 2744 / MIT gssapi_ext.h
GSS_C_MUTUAL_FLAG = 2
GSS_C_REPLAY_FLAG = 4
GSS_C_SEQUENCE_FLAG = 8
GSS_C_CONF_FLAG = 16
GSS_C_INTEG_FLAG = 32
GSS_C_DCE_STYLE = 0x1000
GSS_S_CONTINUE_NEEDED = 1
IOV_DATA = 1
IOV_HEADER = 2
IOV_SIGN_ONLY = 11
IOV_FLAG_ALLOCATE = 0x00010000


class Buffer(ctypes.Structure):
    _fields_ = [("length", ctypes.c_size_t), ("value", ctypes.c_void_p)]


class Iov(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("buffer", Buffer)]


class Gss:
    """One security context (initiator or acceptor)."""

    def __init__(self):
        path = ctypes.util.find_library("gssapi_krb5") or "libgssapi_krb5.so.2"
        self.lib = ctypes.CDLL(path)
        self.mech = ctypes.c_void_p.in_dll(self.lib, "gss_mech_krb5")
        self.nt_principal = ctypes.c_void_p.in_dll(self.lib, "GSS_KRB5_NT_PRINCIPAL_NAME")
        self.ctx = ctypes.c_void_p(None)
        self.name = ctypes.c_void_p(None)

    def check(self, what, major, minor):
        if major & 0xFFFF0000:
            raise GssError("%s: major 0x%08x minor %d" % (what, major, minor.value))

    def import_name(self, spn):
        minor = ctypes.c_uint32()
        raw = spn.encode()
        buf = Buffer(len(raw), ctypes.cast(ctypes.c_char_p(raw), ctypes.c_void_p))
        major = self.lib.gss_import_name(ctypes.byref(minor), ctypes.byref(buf),
                                         self.nt_principal, ctypes.byref(self.name))
        self.check("gss_import_name", major, minor)

    def step(self, token):
        """One gss_init_sec_context call: returns (output token, continue needed)."""
        minor = ctypes.c_uint32()
        inp = Buffer(0, None)
        keep = None
        if token is not None:
            keep = ctypes.create_string_buffer(token, len(token))
            inp = Buffer(len(token), ctypes.cast(keep, ctypes.c_void_p))
        out = Buffer(0, None)
        flags = (GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_CONF_FLAG
                 | GSS_C_INTEG_FLAG | GSS_C_DCE_STYLE)
        ret_flags = ctypes.c_uint32()
        major = self.lib.gss_init_sec_context(
            ctypes.byref(minor), None, ctypes.byref(self.ctx), self.name, self.mech,
            ctypes.c_uint32(flags), ctypes.c_uint32(0), None, ctypes.byref(inp), None,
            ctypes.byref(out), ctypes.byref(ret_flags), None)
        del keep
        self.check("gss_init_sec_context", major, minor)
        data = ctypes.string_at(out.value, out.length) if out.length else b""
        self.lib.gss_release_buffer(ctypes.byref(minor), ctypes.byref(out))
        return data, bool(major & GSS_S_CONTINUE_NEEDED)

    def accept(self, token):
        """One gss_accept_sec_context call: returns (output token, continue needed)."""
        minor = ctypes.c_uint32()
        keep = ctypes.create_string_buffer(token, len(token))
        inp = Buffer(len(token), ctypes.cast(keep, ctypes.c_void_p))
        out = Buffer(0, None)
        ret_flags = ctypes.c_uint32()
        major = self.lib.gss_accept_sec_context(
            ctypes.byref(minor), ctypes.byref(self.ctx), None, ctypes.byref(inp), None,
            ctypes.byref(self.name), None, ctypes.byref(out), ctypes.byref(ret_flags), None,
            None)
        self.check("gss_accept_sec_context", major, minor)
        data = ctypes.string_at(out.value, out.length) if out.length else b""
        self.lib.gss_release_buffer(ctypes.byref(minor), ctypes.byref(out))
        self.flags = ret_flags.value
        return data, bool(major & GSS_S_CONTINUE_NEEDED)

    def peer_name(self):
        minor = ctypes.c_uint32()
        out = Buffer(0, None)
        major = self.lib.gss_display_name(ctypes.byref(minor), self.name, ctypes.byref(out),
                                          None)
        self.check("gss_display_name", major, minor)
        text = ctypes.string_at(out.value, out.length).decode()
        self.lib.gss_release_buffer(ctypes.byref(minor), ctypes.byref(out))
        return text

    def _iov(self, kinds, datas):
        bufs = [ctypes.create_string_buffer(d, len(d)) for d in datas]
        iov = (Iov * len(kinds))()
        for i, (kind, b) in enumerate(zip(kinds, bufs)):
            iov[i].type = kind
            iov[i].buffer = Buffer(len(b.raw), ctypes.cast(b, ctypes.c_void_p))
        return iov, bufs

    def wrap_length(self, head, body, trl):
        """The token length gss_wrap_iov will produce (no sequence number used)."""
        minor = ctypes.c_uint32()
        conf = ctypes.c_int()
        iov, _bufs = self._iov((IOV_HEADER, IOV_SIGN_ONLY, IOV_DATA, IOV_SIGN_ONLY),
                               (b"", head, body, trl))
        iov[0].buffer = Buffer(0, None)
        major = self.lib.gss_wrap_iov_length(ctypes.byref(minor), self.ctx, 1, 0,
                                             ctypes.byref(conf), iov, 4)
        self.check("gss_wrap_iov_length", major, minor)
        return iov[0].buffer.length

    def wrap(self, head, body, trl):
        """Seals `body` with `head` and `trl` signed; returns (sealed body, token)."""
        minor = ctypes.c_uint32()
        conf = ctypes.c_int()
        iov, bufs = self._iov((IOV_HEADER | IOV_FLAG_ALLOCATE, IOV_SIGN_ONLY, IOV_DATA,
                               IOV_SIGN_ONLY), (b"", head, body, trl))
        iov[0].buffer = Buffer(0, None)
        major = self.lib.gss_wrap_iov(ctypes.byref(minor), self.ctx, 1, 0, ctypes.byref(conf),
                                      iov, 4)
        self.check("gss_wrap_iov", major, minor)
        token = ctypes.string_at(iov[0].buffer.value, iov[0].buffer.length)
        sealed = bufs[2].raw
        self.lib.gss_release_iov_buffer(ctypes.byref(minor), iov, 4)
        return sealed, token

    def unwrap(self, head, sealed, trl, token):
        minor = ctypes.c_uint32()
        conf = ctypes.c_int()
        qop = ctypes.c_uint32()
        iov, bufs = self._iov((IOV_HEADER, IOV_SIGN_ONLY, IOV_DATA, IOV_SIGN_ONLY),
                              (token, head, sealed, trl))
        major = self.lib.gss_unwrap_iov(ctypes.byref(minor), self.ctx, ctypes.byref(conf),
                                        ctypes.byref(qop), iov, 4)
        self.check("gss_unwrap_iov", major, minor)
        return bufs[2].raw


class GssError(Exception):
    pass


