"""What the Python bench scripts (idle.py, instr.py) share: the loopback
address they use, a free port on it, and waiting for a process started on
one to listen. Imported from the scripts' own directory."""

import socket
import sys
import time

HOST = "127.0.0.1"


def free_port():
    """A loopback port nothing listens on now (the kernel's pick)."""
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, what, seconds=60):
    """Wait until port accepts a connection; exit if proc (the subprocess
    that is to listen there, named what) exits first or seconds pass."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited early" % what)
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("%s did not listen on %d" % (what, port))
