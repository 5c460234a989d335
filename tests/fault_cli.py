"""`python tests/fault_cli.py FAULT=VALUE ... -- <stbench args>`: the stbench CLI with faults injected
as training-loop hooks: :func:`stbench.train.train` is wrapped so that every run's hooks carry them (the production
code has no fault switch and reads no test environment variables).

Faults (1-based epochs / batches):
- ``kill_after_epoch=E``  SIGKILL the process right after epoch E's checkpoint (and record) are written;
- ``interrupt_at=E,B``    raise KeyboardInterrupt (as Ctrl-C would) after the optimizer step of batch B of epoch E;
- ``nan_model=NAME``      make the training loss of model NAME NaN;
- ``sigint_at_forward=N`` send the process a real SIGINT inside the N-th training forward pass (1-based, counted
                          over the run): BatchNorm has seen that batch, its optimizer step has not happened.
"""

from __future__ import annotations

import os
import signal
import sys


def install(faults: dict[str, str]) -> None:
    from stbench import train

    injected = train.LoopHooks()
    if "kill_after_epoch" in faults:
        epoch = int(faults["kill_after_epoch"])
        injected.after_checkpoint = lambda e: os.kill(os.getpid(), signal.SIGKILL) if e == epoch else None
    if "interrupt_at" in faults:
        at = tuple(int(v) for v in faults["interrupt_at"].split(","))

        def interrupt(epoch: int, batch: int) -> None:
            if (epoch, batch) == at:
                raise KeyboardInterrupt

        injected.after_update = interrupt
    if "nan_model" in faults:
        name = faults["nan_model"]
        injected.on_loss = lambda model, loss: loss * float("nan") if model.names.get("model") == name else loss
    if "sigint_at_forward" in faults:
        n, calls = int(faults["sigint_at_forward"]), [0]

        def sigint(model, loss):
            calls[0] += 1
            if calls[0] == n:
                os.kill(os.getpid(), signal.SIGINT)
            return loss

        injected.on_loss = sigint
    real_train = train.train

    def train_with_faults(*args, hooks: train.LoopHooks | None = None, **kw):
        return real_train(*args, hooks=(hooks or train.LoopHooks()).merged(injected), **kw)

    train.train = train_with_faults  # the runner calls stbench.train.train: every run gets the faults


def main(argv: list[str]) -> int:
    split = argv.index("--")
    install(dict(a.split("=", 1) for a in argv[:split]))
    from stbench.cli import main as cli_main

    return cli_main(argv[split + 1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
