"""A child process whose stdout and stderr go to a log file, ended by PID only."""

import os
import signal
import subprocess


class Process:
    def __init__(self, argv, log_path, env=None):
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = env
        self.proc = None

    def start(self):
        # Append, so a restart keeps the earlier run's output for post-mortems.
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self):
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        """Send sig and wait up to timeout; SIGKILL if it does not exit.

        Returns the exit status (negative signal number when killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        return None if self.proc is None else self.proc.returncode

    def wait(self, timeout):
        """Exit status, or raises subprocess.TimeoutExpired."""
        return self.proc.wait(timeout)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=200):
        return "\n".join(self.log_text().splitlines()[-lines:])
