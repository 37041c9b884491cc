"""Bring up and tear down a private single-node SLURM cluster (munged, slurmctld, slurmd) for tests.

Everything lives in one directory: the munge key and socket, ``slurm.conf``/``gres.conf``, state, spool,
pid and log files. The daemons run in the foreground as children of this process, so teardown stops exactly
the processes started here (and cancels only this cluster's jobs); nothing under /etc, /run or /var is used,
no systemd is needed, and two test runs on one machine do not collide (own ports, cluster name, socket).
Clients find the cluster through ``SLURM_CONF`` (see :meth:`LocalSlurm.env`).

Needs root and Debian's ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them). Command line::

    python tests/slurm/cluster.py up DIR      # start; prints `export SLURM_CONF=...`; stays in foreground
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
CPU_PARTITION = "testcpu"
GPU_PARTITION = "testgpu"


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name)
                                       if p.is_file()), None)


def unavailable_reason() -> str | None:
    """Why a local SLURM cannot run here (None when it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "starting munged/slurmctld/slurmd needs root"
    missing = [name for name in (*DAEMONS, "mungekey", *CLIENTS) if _which(name) is None]
    if missing:
        return f"SLURM/munge not installed (missing {', '.join(missing)}; apt-get install slurm-wlm munge)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _real_memory_mb() -> int:
    total_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal:"))
    return max(1000, min(16000, int(total_kb / 1024 * 0.8)))  # slightly below the machine's


class LocalSlurm:
    """A single-node SLURM cluster in ``root``: partitions ``testcpu`` and ``testgpu`` on one node with fake
    GPUs (gres backed by /dev/tty0 and /dev/tty1)."""

    def __init__(self, root: str | Path, n_gpus: int = 2):
        self.root = Path(root).resolve()
        self.hostname = socket.gethostname().split(".")[0]
        self.cluster_name = f"mlptest{os.getpid()}"
        self.n_gpus = n_gpus
        self.cpus = os.cpu_count() or 1
        self.processes: dict[str, subprocess.Popen] = {}
        self.conf = self.root / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.cpu_partition, self.gpu_partition = CPU_PARTITION, GPU_PARTITION

    # -- environment for clients ------------------------------------------------------------------------
    def env(self, base: dict | None = None) -> dict:
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("SLURM_JOB_ID", None)
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env(), capture_output=True, text=True, check=check,
                              timeout=timeout)

    # -- start ------------------------------------------------------------------------------------------
    def _write_config(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o711)
        values = dict(cluster_name=self.cluster_name, hostname=self.hostname, ctld_port=_free_port(),
                      slurmd_port=_free_port(), munge_socket=self.munge_socket, root=self.root, cpus=self.cpus,
                      real_memory=_real_memory_mb(), n_gpus=self.n_gpus, cpu_partition=self.cpu_partition,
                      gpu_partition=self.gpu_partition,
                      gpu_files=f"/dev/tty[0-{self.n_gpus - 1}]" if self.n_gpus > 1 else "/dev/tty0")
        self.conf.write_text((HERE / "slurm.conf.in").read_text().format(**values))
        (self.root / "gres.conf").write_text((HERE / "gres.conf.in").read_text().format(**values))
        # The Snakemake job-step plugin starts each rule with `srun` after dropping SLURM_* variables other than
        # the job's identity, SLURM_CONF included; a real cluster's srun finds /etc/slurm/slurm.conf (or
        # configless slurmd) instead. This shim, first on PATH, points srun at this cluster's config.
        (self.root / "bin").mkdir(exist_ok=True)
        shim = self.root / "bin" / "srun"
        shim.write_text(f"#!/bin/sh\nSLURM_CONF={shlex.quote(str(self.conf))} exec {_which('srun')} \"$@\"\n")
        shim.chmod(0o755)

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.processes[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                                start_new_session=True)

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                                       f"{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs()}")

    def start(self, timeout: float = 60) -> "LocalSlurm":
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        self._write_config()
        key = self.root / "munge" / "munge.key"
        subprocess.run([_which("mungekey"), "--create", "--force", f"--keyfile={key}"], check=True,
                       capture_output=True)
        os.chmod(key, 0o400)
        self._spawn("munged", [_which("munged"), "--foreground", "--force", f"--key-file={key}",
                               f"--socket={self.munge_socket}", f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}",
                               f"--seed-file={self.root / 'munge' / 'munged.seed'}"])
        self._wait("munged", self.munge_socket.exists, 20)
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self.run("scontrol", "ping", check=False).stdout.count("UP") > 0, timeout)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf)])

        def node_idle():
            out = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.split()
            return bool(out) and all(state.rstrip("*") in {"idle", "mixed", "allocated"} for state in out)

        self._wait("the node to be idle", node_idle, timeout)
        return self

    # -- inspection -------------------------------------------------------------------------------------
    def completed_jobs(self) -> list[dict]:
        """Records of finished jobs from the job-completion log (``JobId=... Partition=... ...``)."""
        path = self.root / "log" / "jobcomp.txt"
        if not path.is_file():
            return []
        records = []
        for line in path.read_text().splitlines():
            record = {}
            for field in line.split():
                key, _, value = field.partition("=")
                record[key] = value
            records.append(record)
        return records

    def logs(self, tail: int = 40) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            if path.is_file():
                lines = path.read_text(errors="replace").splitlines()[-tail:]
                parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- stop -------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop the daemons started by :meth:`start` (nothing else)."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--user", str(os.getuid()), check=False)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.run("squeue", "-h", "-t", "R,CG,PD",
                                                           check=False).stdout.strip():
                time.sleep(0.5)
        for name in reversed(DAEMONS):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def __enter__(self) -> "LocalSlurm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "up":
        print(__doc__)
        return 2
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    cluster = LocalSlurm(argv[1]).start()
    print(f"export SLURM_CONF={cluster.conf}  # partitions {CPU_PARTITION}, {GPU_PARTITION}; Ctrl-C stops",
          flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
