"""pyspnego as an independent NTLM / SPNEGO peer for tests/auth_peers.rs.

Usage: ntlm_peer.py client ntlm|negotiate USER PASSWORD
       ntlm_peer.py server ntlm|negotiate USER_FILE      (pyspnego's DOMAIN:USER:PASSWORD lines)

Reads one command per line on stdin, answers one line on stdout; binary values are base64,
"-" for none. Exit 3 when pyspnego is missing, so the Rust test can skip.
  step TOKEN                    -> ok OUT complete(0|1)     (or: err MESSAGE)
  seal HEADER BODY TRAILER      -> ok SEALED_BODY SIGNATURE (wrap_iov, header signing)
  unseal HEADER BODY TRAILER SIG -> ok PLAIN_BODY
  user                          -> ok PRINCIPAL
No sockets: everything goes over stdin/stdout.
"""

import base64
import os
import sys

try:
    import spnego
    from spnego.iov import BufferType
except ImportError as e:  # pragma: no cover - depends on the environment
    print("pyspnego not importable: %s" % e, file=sys.stderr)
    sys.exit(3)


def b64(data):
    return base64.b64encode(data).decode() if data else "-"


def unb64(text):
    return b"" if text == "-" else base64.b64decode(text)


def main():
    role, proto = sys.argv[1], sys.argv[2]
    if role == "client":
        ctx = spnego.client(
            username=sys.argv[3],
            password=sys.argv[4],
            hostname="wds01",
            service="host",
            protocol=proto,
        )
    else:
        os.environ["NTLM_USER_FILE"] = sys.argv[3]
        ctx = spnego.server(protocol=proto)

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            cmd, args = words[0], [unb64(w) for w in words[1:]]
            if cmd == "step":
                out = ctx.step(args[0] or None)
                reply = "ok %s %d" % (b64(out), 1 if ctx.complete else 0)
            elif cmd == "seal":
                r = ctx.wrap_iov(
                    [
                        (BufferType.sign_only, args[0]),
                        (BufferType.data, args[1]),
                        (BufferType.sign_only, args[2]),
                        BufferType.header,
                    ],
                    encrypt=True,
                )
                reply = "ok %s %s" % (b64(r.buffers[1].data), b64(r.buffers[3].data))
            elif cmd == "unseal":
                r = ctx.unwrap_iov(
                    [
                        (BufferType.sign_only, args[0]),
                        (BufferType.data, args[1]),
                        (BufferType.sign_only, args[2]),
                        (BufferType.header, args[3]),
                    ]
                )
                reply = "ok %s" % b64(r.buffers[1].data)
            elif cmd == "user":
                reply = "ok %s" % b64((ctx.client_principal or "").encode())
            else:
                reply = "err unknown command"
        except Exception as e:  # noqa: BLE001 - every failure goes back to the test
            reply = "err %s" % " ".join(("%s: %s" % (type(e).__name__, e)).split())
        print(reply, flush=True)


if __name__ == "__main__":
    main()
