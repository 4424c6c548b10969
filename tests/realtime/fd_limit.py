#!/usr/bin/env python3
"""A server with two event loops out of file descriptors (ulimit -n 48, 80 connections): the
acceptor rests instead of spinning on the readable listening socket (80 silent connections: each
holds a descriptor while the acceptor waits for its request line) (CPU stays near zero), and
serves again once connections close. Prints "realtime-fd-limit: ..." and exits non-zero on failure.

    /usr/bin/python3 tests/realtime/fd_limit.py build/tablium_sio_conformance
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    port = free_port()
    env = dict(os.environ, PORT=str(port), TB_RT_LOOPS="2")
    server = subprocess.Popen(["bash", "-c", 'ulimit -n 48; exec "$0"', sys.argv[1]], env=env,
                              stderr=subprocess.PIPE)
    socks = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        for _ in range(80):
            # silent connections: each holds a descriptor (the acceptor waits for its request line)
            socks.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.5)
        before = cpu_seconds(server.pid)
        time.sleep(1.0)
        spent = cpu_seconds(server.pid) - before
        for s in socks:
            s.close()
        socks = []
        time.sleep(0.3)
        body = urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5).read()
        alive = server.poll() is None
    finally:
        for s in socks:
            s.close()
        server.terminate()
        err = server.communicate(timeout=10)[1].decode(errors="replace")
    paused = err.count("pausing new connections")
    ok = spent < 0.3 and b'"status":"ok"' in body and alive and paused >= 1
    print("realtime-fd-limit: %s (CPU %.2f s in 1 s out of descriptors, %d pause warning(s), "
          "served again after: %s)" % ("passed" if ok else "FAILED", spent, paused, body.decode()))
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a hang (timeout) or a dead server: a failure, said as such
        print("realtime-fd-limit: FAILED (%s: %s)" % (type(e).__name__, e))
        sys.exit(1)
