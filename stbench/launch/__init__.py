"""Launchers for a ``stbench run`` grid: ``local`` (this process, the default) and ``slurm``.

The Slurm launcher (:mod:`stbench.launch.slurm`) turns the models x seeds grid into one job per
cell, submitted as a job array through submitit; each job runs the same ``stbench run`` command for
its one cell with ``--resume``, so a re-submission skips completed cells and continues interrupted
ones from their checkpoints.
"""
