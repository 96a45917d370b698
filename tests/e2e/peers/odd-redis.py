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
"""
import socket
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


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    s.settimeout(1)
    end = time.time() + 40
    while time.time() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        if mode == "close":
            c.close()
        elif mode == "trickle":
            with open(sys.argv[3], "a") as f:
                f.write("accepted\n")
            threading.Thread(target=trickle, args=(c, sys.argv[3]), daemon=True).start()
        else:
            pong_drop(c)


main()
