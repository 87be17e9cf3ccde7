"""Building and running the chatbench load generator."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ChatbenchError(RuntimeError):
    pass


def binary():
    """$CHATBENCH_BIN, or a standalone build of tests/bench kept in the
    temporary directory and brought up to date on every run."""
    path = os.environ.get("CHATBENCH_BIN")
    if path:
        return path
    # One build directory per checkout: CMake refuses a build directory
    # made from another source tree.
    tag = hashlib.sha1(BENCH_DIR.encode()).hexdigest()[:8]
    build = os.path.join(tempfile.gettempdir(),
                         "chatbench-build-%d-%s" % (os.getuid(), tag))
    for argv in (["cmake", "-S", BENCH_DIR, "-B", build,
                  "-DCMAKE_BUILD_TYPE=Release"],
                 ["cmake", "--build", build, "-j2", "--target", "chatbench",
                  "chatfloor"]):
        done = subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        if done.returncode:
            raise ChatbenchError("building chatbench failed:\n" +
                                 done.stdout.decode(errors="replace")[-2000:])
    return os.path.join(build, "chatbench")


def floor_binary(chatbench_bin):
    """$CHATFLOOR_BIN, or the chatfloor built next to chatbench."""
    return os.environ.get("CHATFLOOR_BIN") or os.path.join(
        os.path.dirname(chatbench_bin), "chatfloor")


def run(bin_path, mode, args, on_event=None):
    """Runs chatbench MODE ARGS; its progress goes to our stderr. Calls
    on_event(dict) for each event line, returns the result line as a dict."""
    argv = [bin_path, mode, "--quiet"] + [str(a) for a in args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=sys.stderr,
                            stdin=subprocess.DEVNULL, text=True)
    result = None
    try:
        for line in proc.stdout:
            obj = json.loads(line)
            if "event" in obj:
                if on_event:
                    on_event(obj)
            else:
                result = obj
        status = proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
    if status != 0 or result is None:
        raise ChatbenchError("chatbench %s exited with status %s" % (
            mode, status))
    return result
