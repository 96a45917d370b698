#!/usr/bin/env python3
"""Peers on 127.0.0.1 that misbehave the way a broken or hostile Redis
endpoint can, for test-agent-tls.sh. Each runs for at most 40 s.

  odd-redis.py close PORT         accepts each connection and closes it
  odd-redis.py trickle PORT FILE  sends one byte of a TLS handshake record
                                  a second, never a whole record; a line
                                  in FILE for each connection taken, and
                                  one when its first bytes (the client's
                                  hello) have come
  odd-redis.py pong-drop PORT     answers the first command of each
                                  connection +PONG, then closes it
  odd-redis.py tls-garbage PORT CERT KEY
                                  TLS: answers PING, SUBSCRIBE, LPUSH and
                                  GET as Redis would (GET: nil); 0.5 s after
                                  a SUBSCRIBE, bytes that are no TLS record
                                  on that connection's socket
"""
import os
import socket
import ssl
import sys
import threading
import time


def trickle(c, seen):
    try:
        # The client's hello read first: the client then waits for an
        # answer (its handshake is under way).
        c.settimeout(10)
        if c.recv(4096):
            with open(seen, "a") as f:
                f.write("hello\n")
        c.settimeout(None)
        # A handshake record of 16 KiB (its header is whole after 5 s).
        for b in b"\x16\x03\x03\x40\x00" + bytes(35):
            c.send(bytes([b]))
            time.sleep(1)
    except OSError:
        pass
    c.close()


def pong_drop(c):
    c.settimeout(2)
    try:
        if c.recv(4096):
            c.sendall(b"+PONG\r\n")
            c.recv(4096)
    except OSError:
        pass
    c.close()


def resp_command(f):
    """One RESP command (an array of bulk strings) from f, or None."""
    line = f.readline()
    if not line.startswith(b"*"):
        return None
    args = []
    for _ in range(int(line[1:])):
        n = int(f.readline()[1:])
        args.append(f.read(n + 2)[:n])
    return args


def tls_garbage(c, ctx):
    try:
        t = ctx.wrap_socket(c, server_side=True)
        t.settimeout(5)
        f = t.makefile("rb")
        while True:
            args = resp_command(f)
            if not args:
                break
            cmd = args[0].upper()
            if cmd == b"SUBSCRIBE":
                ch = args[1]
                t.sendall(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(ch), ch))
                time.sleep(0.5)
                os.write(t.fileno(), b"not a TLS record\r\n" * 4)
                time.sleep(1)
                break
            t.sendall({b"PING": b"+PONG\r\n", b"LPUSH": b":1\r\n"}.get(cmd, b"$-1\r\n"))
    except (OSError, ValueError):
        pass
    c.close()


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    s.settimeout(1)
    if mode == "tls-garbage":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    end = time.time() + 40
    while time.time() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        if mode == "close":
            c.close()
        elif mode == "tls-garbage":
            threading.Thread(target=tls_garbage, args=(c, ctx), daemon=True).start()
        elif mode == "trickle":
            with open(sys.argv[3], "a") as f:
                f.write("accepted\n")
            threading.Thread(target=trickle, args=(c, sys.argv[3]), daemon=True).start()
        else:
            pong_drop(c)


main()
