"""Run the Snakemake controller itself as a long-running SLURM job (submitit), requeued on preemption/timeout.

The SLURM executor plugin submits every rule as its own job, but the controller (``snakemake --profile
workflow/profiles/slurm``) must stay alive for the whole study, longer than a login session. This command
submits it as one SLURM job with its own time limit and log files::

    mlp-transfer launch --profile workflow/profiles/slurm --configfile config/paper.yaml \\
        --time 2-00:00:00 --partition long

When the job is preempted or reaches its time limit, SLURM sends USR2 (``--signal=USR2@<signal-delay>``);
submitit then calls :meth:`SnakemakeController.checkpoint`, which interrupts Snakemake like Ctrl-C (it cancels
the rule jobs it submitted; training jobs checkpoint on the resulting SIGTERM) and requeues the controller.
The requeued controller unlocks the working directory and starts Snakemake again: finished outputs are kept,
incomplete ones are rerun (``rerun-incomplete``) and training resumes from its checkpoints. After
``--max-requeues`` time-outs it gives up (preemptions do not count).

Logs: ``<log-dir>/<jobid>_0_log.out`` / ``.err`` (the controller's and Snakemake's output), the submitted
sbatch script ``<jobid>_submission.sh`` and, once finished, ``<jobid>_0_result.pkl``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import submitit

REPO = Path(__file__).resolve().parents[2]


def parse_time(value: str) -> int:
    """SLURM time ("D-HH:MM:SS", "HH:MM:SS", "MM:SS", "D-HH", or minutes) -> whole minutes (at least 1)."""
    value = value.strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value)
    if not match:
        raise ValueError(f"invalid SLURM time {value!r} (use D-HH:MM:SS, HH:MM:SS or minutes)")
    days, first, second, third = match.groups()
    has_days = days is not None  # "0-05" is five hours: the day part decides the format, even when it is 0
    days = int(days or 0)
    if has_days and second is None:  # D-HH
        hours, minutes, seconds = int(first), 0, 0
    elif third is not None:  # [D-]HH:MM:SS
        hours, minutes, seconds = int(first), int(second), int(third)
    elif second is not None:  # D-HH:MM or MM:SS
        hours, minutes, seconds = (int(first), int(second), 0) if has_days else (0, int(first), int(second))
    else:  # minutes
        hours, minutes, seconds = 0, int(first), 0
    total = days * 24 * 60 + hours * 60 + minutes + (1 if seconds else 0)
    return max(1, total)


def _child_env() -> dict:
    """The job's environment minus its SLURM job context (so that jobs submitted from inside the controller
    job do not inherit its allocation); SLURM_CONF, which locates the cluster, is kept."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}


def _ignore_usr2() -> None:
    # SLURM signals every process of the job step; Snakemake must not die of the preemption warning
    # (default action of USR2: terminate). An ignored signal stays ignored across exec.
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def _reap(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for child ``pid`` to exit (without Popen's lock); True once it has."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


class SnakemakeController(submitit.helpers.Checkpointable):
    """Runs ``snakemake <args>`` in ``workdir``; resubmittable (submitit pickles it with its ``restarts``)."""

    def __init__(self, snakemake_args: list[str], workdir: str, interrupt_grace_s: float = 60.0):
        self.snakemake_args = list(snakemake_args)
        self.workdir = str(workdir)
        self.interrupt_grace_s = interrupt_grace_s
        self.restarts = 0
        self._proc: subprocess.Popen | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_proc"] = None  # a running process is not part of the resubmitted state
        return state

    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "snakemake"), *self.snakemake_args]

    def __call__(self) -> int:
        env = _child_env()
        if self.restarts:
            # The previous controller was interrupted; its lock may remain if it did not exit cleanly.
            print(f"controller restart {self.restarts}: unlocking {self.workdir}", flush=True)
            subprocess.run([*self.command(), "--unlock"], cwd=self.workdir, env=env, check=False)
        print("running:", shlex.join(self.command()), f"(in {self.workdir})", flush=True)
        self._proc = subprocess.Popen(self.command(), cwd=self.workdir, env=env, preexec_fn=_ignore_usr2)
        # Poll rather than block in wait(): the checkpoint signal handler runs in this thread and must be able
        # to reap the process itself (a blocking wait holds the lock it would need).
        while (returncode := self._proc.poll()) is None:
            time.sleep(1)
        self._proc = None
        if returncode != 0:
            raise RuntimeError(f"snakemake exited with status {returncode}; see this job's log and the rule "
                               f"logs it names")
        return returncode

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        """Preemption or time limit: stop Snakemake like Ctrl-C (it cancels its SLURM jobs), then requeue."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            print("controller interrupted: stopping snakemake (SIGINT) before requeue", flush=True)
            proc.send_signal(signal.SIGINT)
            if not _reap(proc.pid, self.interrupt_grace_s):
                proc.kill()
                _reap(proc.pid, 10)
        self._proc = None
        self.restarts += 1
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def build_executor(log_dir: str | Path, *, time_min: int, partition: str | None, account: str | None,
                   mem_gb: float, cpus: int, name: str, signal_delay_s: int, max_requeues: int,
                   extra: dict | None = None) -> submitit.SlurmExecutor:
    executor = submitit.SlurmExecutor(folder=str(log_dir), max_num_timeout=max_requeues)
    additional = dict(extra or {})
    if account:
        additional["account"] = account
    executor.update_parameters(time=time_min, partition=partition or None, mem=f"{int(mem_gb * 1024)}M",
                               cpus_per_task=cpus, ntasks_per_node=1, nodes=1, job_name=name,
                               signal_delay_s=signal_delay_s, additional_parameters=additional)
    return executor


def launch(snakemake_args: list[str], *, workdir: str | Path = ".", log_dir: str | Path = "logs/controller",
           time_limit: str = "1-00:00:00", partition: str | None = None, account: str | None = None,
           mem_gb: float = 4.0, cpus: int = 1, name: str = "mlp-transfer-controller", signal_delay_s: int = 120,
           max_requeues: int = 3) -> submitit.Job:
    """Submit the controller; returns the submitit job (``job.job_id``, ``job.paths``, ``job.result()``)."""
    workdir = Path(workdir).resolve()
    log_dir = Path(log_dir)
    if not log_dir.is_absolute():
        log_dir = workdir / log_dir
    executor = build_executor(log_dir, time_min=parse_time(time_limit), partition=partition, account=account,
                              mem_gb=mem_gb, cpus=cpus, name=name, signal_delay_s=signal_delay_s,
                              max_requeues=max_requeues)
    return executor.submit(SnakemakeController(snakemake_args, str(workdir), interrupt_grace_s=signal_delay_s / 2))


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mlp-transfer launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Arguments after `--` go to snakemake unchanged, e.g. `-- --keep-going results/tables/summary.csv`.")
    parser.add_argument("--profile", default="workflow/profiles/slurm", help="Snakemake profile for rule jobs")
    parser.add_argument("--configfile", help="study config (default: the embedded config/config.yaml)")
    parser.add_argument("--snakefile", default=str(REPO / "Snakefile"))
    parser.add_argument("--directory", default=".", help="working directory of the study (results/ go here)")
    parser.add_argument("--time", default="1-00:00:00", help="controller time limit (D-HH:MM:SS; default 1 day)")
    parser.add_argument("--partition", default=os.environ.get("MLP_CONTROLLER_PARTITION")
                        or os.environ.get("MLP_CPU_PARTITION"),
                        help="controller partition (default: $MLP_CONTROLLER_PARTITION, else $MLP_CPU_PARTITION, "
                             "else the cluster default)")
    parser.add_argument("--account", default=os.environ.get("MLP_SLURM_ACCOUNT"),
                        help="SLURM account (default: $MLP_SLURM_ACCOUNT)")
    parser.add_argument("--mem-gb", type=float, default=4.0, help="controller memory (GB)")
    parser.add_argument("--cpus", type=int, default=1, help="controller CPUs")
    parser.add_argument("--log-dir", default="logs/controller", help="submitit folder, relative to --directory")
    parser.add_argument("--name", default="mlp-transfer-controller", help="SLURM job name")
    parser.add_argument("--signal-delay", type=int, default=120,
                        help="seconds before the time limit at which the controller checkpoints and requeues")
    parser.add_argument("--max-requeues", type=int, default=3, help="requeues after time-outs before giving up")
    parser.add_argument("--wait", action="store_true", help="wait for the controller to finish; exit with its status")
    parser.add_argument("snakemake_args", nargs="*", help="further snakemake arguments (after --)")
    args = parser.parse_args(argv)

    smk = ["--snakefile", str(Path(args.snakefile).resolve())]
    if args.profile:
        profile = Path(args.profile)
        smk += ["--profile", str(profile.resolve()) if profile.exists() else args.profile]
    smk += args.snakemake_args
    if args.configfile:  # last: --configfile takes several values and would swallow targets after it
        smk += ["--configfile", str(Path(args.configfile).resolve())]
    job = launch(smk, workdir=args.directory, log_dir=args.log_dir, time_limit=args.time, partition=args.partition,
                 account=args.account, mem_gb=args.mem_gb, cpus=args.cpus, name=args.name,
                 signal_delay_s=args.signal_delay, max_requeues=args.max_requeues)
    print(f"submitted controller job {job.job_id}\n  stdout: {job.paths.stdout}\n  stderr: {job.paths.stderr}",
          flush=True)
    if not args.wait:
        return 0
    while not job.done():
        time.sleep(5)
    try:
        job.result()
    except Exception as exc:  # submitit re-raises the controller's error with its traceback
        print(f"controller job {job.job_id} failed: {exc}\n  log: {job.paths.stderr}", file=sys.stderr)
        return 1
    print(f"controller job {job.job_id} finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
