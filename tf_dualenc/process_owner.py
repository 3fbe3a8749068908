"""Who owns a lock or a temporary folder, and whether that owner is gone: a killed job (kill -9, a lost machine)
cannot clean up after itself, so the next job must tell a dead owner's leftovers from a running job's work."""

import os
import socket


def this_host():
    return socket.gethostname()


def process_start_ticks(pid):
    """The process's start time in clock ticks since boot (Linux), or None where /proc cannot tell: with the pid it
    identifies a process, since a pid is reused once its process has ended."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after its closing parenthesis do not.
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def owner_record():
    """This process as an owner: {"pid", "host", "start"}."""
    pid = os.getpid()
    return {"pid": pid, "host": this_host(), "start": process_start_ticks(pid)}


def owner_is_dead(pid, host, start=None):
    """True only when the owner certainly ended: it ran on this host and its pid is gone (or now names a process that
    started at another time). An owner on another host is never declared dead: this host cannot see its processes."""
    if host != this_host():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        pass
    if start is not None:
        current = process_start_ticks(pid)
        return current is not None and current != start
    return False
