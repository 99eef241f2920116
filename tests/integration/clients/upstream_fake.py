#!/usr/bin/env python3
# upstream_fake.py — hostile or odd upstreams for the gateway's upstream side
# (test_gateway_upstream_auth.sh). Each server writes READYFILE once listening
# and logs what it receives to stdout (flushed).
#
#   upstream_fake.py mitm PORT READYFILE PGPORT CERT KEY
#       a relaying TLS man in the middle: answers the SSLRequest with its own
#       certificate, opens TLS to the real PostgreSQL at PGPORT and relays
#       bytes both ways, logging what the client sends ("c->s ...").
#   upstream_fake.py server PORT READYFILE SCENARIO [CERT KEY]
#       with CERT and KEY the SSLRequest is accepted (TLS), otherwise refused.
#       SCENARIO:
#         scram_only   offers SCRAM-SHA-256 alone, logs the SASLInitialResponse,
#                      then refuses with an ErrorResponse
#         md5          asks for an md5 password, logs what comes back
#         flood        AuthenticationOk, then NoticeResponses without end
#         badcode_auth   an ErrorResponse whose SQLSTATE holds a newline, at once
#         badcode_startup  the same after AuthenticationOk
#   upstream_fake.py slowcancel PORT READYFILE PGPORT DELAY
#       a plain relay to the real PostgreSQL at PGPORT that holds a
#       CancelRequest DELAY seconds before passing it on, and logs "cancel
#       received" and, once PostgreSQL closed it, "cancel delivered".
#   upstream_fake.py noread PORT
#       a client of the gateway that sends a StartupMessage and never reads
#   upstream_fake.py fatal PORT
#       a client of the gateway: prints the SQLSTATE and message of the
#       ErrorResponse the gateway answers its StartupMessage with
import socket
import ssl
import struct
import sys
import threading
import time


def log(*a):
    print(*a, flush=True)


def recvn(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError
        b += x
    return b


def msg(t, body):
    return t + struct.pack("!i", len(body) + 4) + body


def readmsg(c):
    h = recvn(c, 5)
    n = struct.unpack("!i", h[1:])[0]
    return h[:1], recvn(c, n - 4)


def R(code, extra=b""):
    return msg(b"R", struct.pack("!i", code) + extra)


def err(m, code=b"28000"):
    return msg(b"E", b"SFATAL\0VFATAL\0C" + code + b"\0M" + m + b"\0\0")


def startup_body():
    body = struct.pack("!i", 196608) + b"user\0u\0database\0d\0\0"
    return struct.pack("!i", len(body) + 4) + body


def read_startup(c):
    n = struct.unpack("!i", recvn(c, 4))[0]
    return recvn(c, n - 4)


def listen(port, ready):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    open(ready, "w").write("ready\n")
    return srv


def pump(a, b, tag):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if tag:
                log(tag, d[:200])
            b.sendall(d)
    except (OSError, ssl.SSLError):
        pass
    for s in (a, b):
        try:
            s.close()
        except OSError:
            pass


def mitm(port, ready, pgport, cert, key):
    srv = listen(port, ready)

    def serve(c):
        try:
            body = read_startup(c)
            if struct.unpack("!i", body[:4])[0] != 80877103:
                return c.close()
            c.sendall(b"S")
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.load_cert_chain(cert, key)
            c = sctx.wrap_socket(c, server_side=True)
            u = socket.create_connection(("127.0.0.1", pgport))
            u.sendall(struct.pack("!ii", 8, 80877103))
            if u.recv(1) != b"S":
                raise RuntimeError("upstream refused TLS")
            cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            cctx.check_hostname = False
            cctx.verify_mode = ssl.CERT_NONE
            u = cctx.wrap_socket(u)
            log("MITM: relaying a TLS session")
            threading.Thread(target=pump, args=(u, c, None), daemon=True).start()
            pump(c, u, "c->s")
        except Exception as e:  # noqa: BLE001 - a test helper logs and goes on
            log("MITM error", repr(e))

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def slowcancel(port, ready, pgport, delay):
    """A plain relay to PostgreSQL that holds each CancelRequest for DELAY
    seconds before passing it on, then waits for PostgreSQL to close."""
    srv = listen(port, ready)

    def serve(c):
        try:
            first = recvn(c, 8)
            u = socket.create_connection(("127.0.0.1", pgport))
            if first == struct.pack("!ii", 16, 80877102):
                log("cancel received")
                time.sleep(delay)
                u.sendall(first + recvn(c, 8))
                while u.recv(4096):
                    pass
                log("cancel delivered")
                u.close()
                c.close()
                return
            u.sendall(first)
            threading.Thread(target=pump, args=(u, c, None), daemon=True).start()
            pump(c, u, None)
        except Exception as e:  # noqa: BLE001 - a test helper logs and goes on
            log("slowcancel error", repr(e))

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def server(port, ready, scen, cert=None, key=None):
    srv = listen(port, ready)

    def serve(c):
        try:
            body = read_startup(c)
            if struct.unpack("!i", body[:4])[0] == 80877103:
                if cert:
                    c.sendall(b"S")
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(cert, key)
                    c = ctx.wrap_socket(c, server_side=True)
                    log("TLS up")
                else:
                    c.sendall(b"N")
                body = read_startup(c)
            log("startup")
            if scen == "scram_only":
                c.sendall(R(10, b"SCRAM-SHA-256\0\0"))
                t, b = readmsg(c)
                log("SASLInitialResponse", b)
                c.sendall(err(b"fake: stop here"))
            elif scen == "md5":
                c.sendall(R(5, b"abcd"))
                t, b = readmsg(c)
                log("PASSWORD RECEIVED", t, b)
                c.sendall(err(b"fake: stop here"))
            elif scen == "flood":
                c.sendall(R(0))
                m = msg(b"N", b"SNOTICE\0M" + b"N" * 60000 + b"\0\0") * 16
                sent = 0
                while True:
                    c.sendall(m)
                    sent += len(m)
                    if sent > (1 << 30):  # the gateway must stop us long before 1 GiB
                        log("flood: 1 GiB sent")
                        return
            elif scen == "badcode_auth":
                c.sendall(err(b"bad code", code=b"XX\n00"))
            elif scen == "badcode_startup":
                c.sendall(R(0) + err(b"bad code", code=b"XX\n00"))
            else:
                log("unknown scenario", scen)
            c.recv(100)
        except (EOFError, OSError, ssl.SSLError) as e:
            log("conn ended:", repr(e))
        finally:
            try:
                c.close()
            except OSError:
                pass

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def noread(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(startup_body())
    log("sent the startup; not reading")
    time.sleep(3600)


def fatal(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(startup_body())
    while True:
        t, b = readmsg(s)
        if t == b"E":
            fields = {f[:1]: f[1:] for f in b.split(b"\0") if f}
            print(fields.get(b"C", b"").decode("latin-1").encode("unicode_escape").decode(),
                  fields.get(b"M", b"").decode("latin-1"))
            return


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "mitm":
        mitm(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    elif mode == "slowcancel":
        slowcancel(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif mode == "server":
        server(int(sys.argv[2]), sys.argv[3], sys.argv[4], *sys.argv[5:7])
    elif mode == "noread":
        noread(int(sys.argv[2]))
    elif mode == "fatal":
        fatal(int(sys.argv[2]))
    else:
        sys.exit("unknown mode " + mode)
