"""``stbench run ... --launcher slurm``: the models x seeds grid as a Slurm job array (submitit).

    stbench run --models 'tau,simvp,predrnn' --seeds 0,1,2 --preset paper --out /shared/results \\
        --launcher slurm --slurm-partition gpu --slurm-gpus-per-node 1 --slurm-time 12:00:00 \\
        --slurm-mem 32G --slurm-extra account=myproj --slurm-extra qos=normal
    stbench status --results /shared/results      # from the login node, while the array runs

Every cell is one job that runs ``stbench run --models M --seeds S --resume`` (plus the user's other
flags) in a fresh process, so:
- each cell writes its record to the shared ``--out`` exactly as a local run does;
- re-submitting the same command skips the completed cells (their records say so) and resumes the
  interrupted ones from their checkpoints;
- a cell that fails (NaN loss, an exception, a node failure) fails alone; the others go on.
Each submission writes a manifest ``<out>/grid/<dataset>__<preset>.json`` (cells and job ids,
:mod:`stbench.launch.manifest`) from which ``stbench status`` lists the cells that have no record yet as ``queued``.
Each job runs the function the caller passes (``stbench.cli.main``): this module does not import the CLI.

``--launcher submitit-local`` takes the same path with submitit's local executor (separate processes
on this machine, no Slurm): a way to test a sweep before sending it to a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stbench.errors import UserError
from stbench.launch.manifest import job_key, update_manifest
from stbench.records import now_iso, read_record, record_path

# options of `stbench run` that the launcher sets per cell or consumes itself (value-taking first)
_CELL_OPTS = ("--models", "--seeds", "--seed", "--shard", "--launcher", "--slurm-partition",
              "--slurm-gpus-per-node", "--slurm-time", "--slurm-mem", "--slurm-extra", "--slurm-cpus-per-task",
              "--slurm-array-parallelism")
_CELL_FLAGS = ("--resume", "--wait")


@dataclass
class SlurmOptions:
    partition: str | None = None
    gpus_per_node: int = 0
    time: str = "24:00:00"
    mem: str | None = None
    cpus_per_task: int | None = None
    array_parallelism: int = 64
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: Any) -> SlurmOptions:
        extra: dict[str, str] = {}
        for item in getattr(args, "slurm_extra", None) or []:
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise UserError(f"bad --slurm-extra '{item}'; write KEY=VALUE, e.g. --slurm-extra account=myproj")
            extra[key.strip().replace("-", "_")] = val.strip()
        return cls(partition=args.slurm_partition, gpus_per_node=int(args.slurm_gpus_per_node or 0),
                   time=args.slurm_time or "24:00:00", mem=args.slurm_mem, cpus_per_task=args.slurm_cpus_per_task,
                   array_parallelism=int(args.slurm_array_parallelism or 64), extra=extra)


def parse_time_minutes(text: str) -> int:
    """Slurm time ``[D-]HH:MM:SS`` / ``HH:MM`` / ``MM`` -> whole minutes (at least 1)."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise UserError(f"bad --slurm-time '{text}'; write HH:MM:SS or D-HH:MM:SS, e.g. --slurm-time 12:00:00")
    d, a, b, c = (int(g) if g else None for g in m.groups())
    if b is None:  # "MM"
        minutes = a
    elif c is None:  # "HH:MM"
        minutes = a * 60 + b
    else:  # "HH:MM:SS"
        minutes = a * 60 + b + (1 if c else 0)
    return max(1, (d or 0) * 24 * 60 + minutes)


def parse_mem_gb(text: str | None) -> float | None:
    if not text:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)B?", text.strip(), re.IGNORECASE)
    if not m:
        raise UserError(f"bad --slurm-mem '{text}'; write a size such as 32G or 64000M")
    scale = {"": 1 / 1024, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}[m.group(2).upper()]
    return float(m.group(1)) * scale


def cell_argv(argv: Sequence[str], model: str, seed: int, budget: str | None = None) -> list[str]:
    """The user's ``stbench run`` argv for one cell: grid and launcher options replaced. With ``budget`` (a cell of
    ``stbench sweep``) the cell is ``stbench run ... --budget <budget>``: ``sweep`` becomes ``run`` and the
    sweep's ``--budgets`` is dropped."""
    out: list[str] = []
    drop = _CELL_OPTS + (("--budgets", "--budget") if budget else ())
    it = iter(argv)
    for tok in it:
        name = tok.split("=", 1)[0]
        if name in drop:
            if "=" not in tok:
                next(it, None)  # its value
            continue
        if name in _CELL_FLAGS:
            continue
        out.append("run" if budget and tok == "sweep" and "run" not in out else tok)
    return [*out, "--models", model, "--seeds", str(seed), "--resume", *(("--budget", budget) if budget else ())]


def _executor(name: str, out: Path, cluster: str, slurm: SlurmOptions) -> tuple[Any, Path]:
    """A submitit executor for ``stbench`` jobs (Slurm, or local processes with ``cluster="local"``)."""
    try:
        import submitit
    except ImportError:
        raise UserError("--launcher slurm needs submitit; install it with: pip install 'stbench[slurm]'") from None

    params: dict[str, Any] = {"name": name, "timeout_min": parse_time_minutes(slurm.time),
                              "gpus_per_node": slurm.gpus_per_node, "slurm_array_parallelism": slurm.array_parallelism,
                              "tasks_per_node": 1, "nodes": 1}
    if slurm.partition:
        params["slurm_partition"] = slurm.partition
    if (mem := parse_mem_gb(slurm.mem)) is not None:
        params["mem_gb"] = mem
    if slurm.cpus_per_task:
        params["cpus_per_task"] = slurm.cpus_per_task
    if slurm.extra:
        params["slurm_additional_parameters"] = dict(slurm.extra)
    folder = Path(out) / "slurm" / now_iso().replace(":", "")
    try:
        ex = submitit.AutoExecutor(folder=folder, cluster=cluster)
    except RuntimeError:
        raise UserError("--launcher slurm found no Slurm here ('srun' is not on PATH); submit from the "
                        "cluster's login node, or test the sweep here with --launcher submitit-local") from None
    ex.update_parameters(**params)
    return ex, folder


def wait_jobs(jobs: list[Any], labels: list[str], echo: Any = print) -> int:
    """Wait for submitted jobs; 1 when any failed (each failure named), else 0."""
    failed = []
    for label, job in zip(labels, jobs):
        try:
            code = job.result()
        except Exception as exc:  # noqa: BLE001 - a lost job is one failed cell, not a crash of the sweep
            echo(f"  {label}: job failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            code = 1
        else:
            if code:  # the cell's own run failed: its record holds the reason
                echo(f"  {label}: exit {code} (its record's reason: stbench status)")
        if code:
            failed.append(label)
    if failed:
        echo(f"{len(failed)} of {len(labels)} cells failed: {', '.join(failed)}")
    return 1 if failed else 0


Job = Callable[[list[str]], int]  # what one job runs in a fresh process on a compute node: stbench.cli.main(argv)


@dataclass
class Launch:
    """Where and how cells are submitted: each job runs ``job(argv)`` on ``cluster`` (``slurm``, or ``local`` for
    submitit's local processes) with ``slurm``'s resources; ``wait`` for the jobs; ``echo`` prints progress."""

    job: Job
    cluster: str
    slurm: SlurmOptions
    wait: bool = False
    echo: Callable[[str], Any] = print

    @classmethod
    def from_args(cls, args: Any, job: Job, echo: Callable[[str], Any] = print) -> Launch:
        """From ``--launcher slurm|submitit-local``, the ``--slurm-*`` options and ``--wait``."""
        return cls(job, "local" if args.launcher == "submitit-local" else "slurm", SlurmOptions.from_args(args),
                   bool(args.wait), echo)


@dataclass
class Grid:
    """The cells of one grid: models x seeds (x ``budgets``, ``stbench sweep``: one cell per model x budget x seed,
    ``folder_of(model, budget)`` the records sub-folder of that budget, :func:`stbench.runner.budget_dir_of`)."""

    models: list[str]
    seeds: list[int]
    dataset: str
    preset: str
    out: Path
    force: bool = False  # submit completed cells too
    budgets: Sequence[str | None] = (None,)
    folder_of: Callable[[str, str | None], str | None] | None = None

    def cells(self) -> list[tuple[str, int, str | None, str | None]]:
        """(model, seed, budget, records sub-folder) of every cell."""
        folder_of = self.folder_of or (lambda m, b: None)
        return [(m, s, b, folder_of(m, b)) for b in self.budgets for m in self.models for s in self.seeds]


def submit_grid(argv: Sequence[str], grid: Grid, launch: Launch) -> int:
    """Submit every cell of ``grid`` whose record is not completed, each a job running the user's command for that
    cell (:func:`cell_argv`); returns 0 (or, with ``launch.wait``, 1 when a cell failed). The cells and job ids go to
    the grid's manifest (:mod:`stbench.launch.manifest`)."""
    echo, out = launch.echo, grid.out
    cells = grid.cells()
    todo, done = [], []
    for cell in cells:
        m, s, _, sub = cell
        old = read_record(record_path(out, grid.dataset, grid.preset, m, s, budget_dir=sub))
        (done if old is not None and old.status == "completed" and not grid.force else todo).append(cell)
    echo(f"grid {grid.dataset}/{grid.preset}: {len(cells)} cells, {len(done)} already completed, "
         f"submitting {len(todo)}")
    jobs: list[Any] = []
    if todo:
        ex, folder = _executor(f"stbench-{grid.dataset}-{grid.preset}", out, launch.cluster, launch.slurm)
        jobs = ex.map_array(launch.job, [cell_argv(argv, m, s, b) for m, s, b, _ in todo])
        for (m, s, b, _), j in zip(todo, jobs):
            echo(f"  {m} seed {s}{' ' + b if b else ''}: job {j.job_id}")
        echo(f"submitted {len(jobs)} job(s); logs under {folder}; watch with: stbench status --results {out}")
    update_manifest(out, grid.dataset, grid.preset, [(m, s, sub) for m, s, _, sub in cells],
                    {job_key(m, s, sub): str(j.job_id) for (m, s, _, sub), j in zip(todo, jobs)})
    if not launch.wait:
        return 0
    return wait_jobs(jobs, [f"{m} seed {s}{' ' + b if b else ''}" for m, s, b, _ in todo], echo)


def submit_models(argvs: dict[str, list[str]], name: str, out: Path, launch: Launch) -> int:
    """One job per model, each running ``launch.job(argv)`` (``stbench tune``: a model's trials and final runs are
    one job, since its final runs depend on its trials)."""
    ex, folder = _executor(name, out, launch.cluster, launch.slurm)
    jobs = ex.map_array(launch.job, list(argvs.values()))
    for model, j in zip(argvs, jobs):
        launch.echo(f"  {model}: job {j.job_id}")
    launch.echo(f"submitted {len(jobs)} job(s); logs under {folder}; watch with: stbench status --results {out}")
    return wait_jobs(jobs, list(argvs), launch.echo) if launch.wait else 0
