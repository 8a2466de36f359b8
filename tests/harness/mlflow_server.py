"""Runs one `mlflow server` for the test harness and stops it when the test process goes away.

Usage: python mlflow_server.py [--cleanup DIR] -- mlflow server ARGS...

The server runs in its own process group. This script waits for its standard input to close,
which happens when the test process drops its handle or ends in any way (panic, kill -9), then
stops the whole group (the server and its workers) and removes DIR.
"""

import os
import shutil
import signal
import subprocess
import sys


def main() -> int:
    args = sys.argv[1:]
    cleanup = None
    if len(args) >= 2 and args[0] == "--cleanup":
        cleanup, args = args[1], args[2:]
    if args and args[0] == "--":
        args = args[1:]
    proc = subprocess.Popen(args, start_new_session=True)
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except BaseException:
        pass
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
