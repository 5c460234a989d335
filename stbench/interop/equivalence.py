"""Function-equivalence evidence, one list: which fixture shows which zoo model reproduces its reference code.

    from stbench.interop.equivalence import evidence_for
    evidence_for("tau")   # [Evidence(fixture="tau", ..., max_abs_diff=1.0e-6), Evidence(fixture="tau_tout20", ...)]

A fixture (``tests/data/{openstl,predformer}/<name>.pt``, written by the peer's own code; how: the READMEs
there and docs/protocol.md, "Interop") holds a reference model's config, weights, an input batch and the
reference's prediction. The measured ``max |stbench - reference|`` of every fixture lives in
``equivalence.json`` beside this module and is WRITTEN BY :func:`main`, never typed by hand::

    python -m stbench.interop.equivalence          # re-measure every fixture, rewrite equivalence.json

``tests/test_equivalence.py`` re-measures the fixtures and checks that the file still says what the code
does. The report's model pages read the file (the fixtures themselves do not ship with the package).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOLERANCE = 1e-5  # the bar: max |stbench - reference| over the whole prediction, fp32 on CPU
MEASURED_FILE = Path(__file__).with_name("equivalence.json")
REPO_FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "data"  # a source checkout only


@dataclass(frozen=True)
class Fixture:
    name: str  # file stem under tests/data/<source>/
    source: str  # "openstl" | "predformer": the converter that loads it
    models: tuple[str, ...]  # the zoo models whose code path it checks
    reference: str  # the reference method, in words
    frames: str  # "T_in -> T_out"
    written_by: str  # "shared" (the peer's code, once for the project) or "ours, timm 0.6.13"


def _metavp(translator: str, model_type: str, written_by: str = "shared") -> Fixture:
    return Fixture(f"simvp_{translator}", "openstl", (translator,), f"OpenSTL SimVP ({model_type})", "10 -> 10",
                   written_by)


OURS = "ours, timm 0.6.13"  # OpenSTL's Swin / ViT / SwinLSTM code needs timm < 0.9 (docs/protocol.md, "Interop")
FIXTURES: tuple[Fixture, ...] = (
    Fixture("simvp", "openstl", ("simvp",), "OpenSTL SimVP (IncepU)", "10 -> 10", "shared"),
    Fixture("gsta", "openstl", ("gsta",), "OpenSTL SimVP (gSTA)", "10 -> 10", "shared"),
    Fixture("tau", "openstl", ("tau",), "OpenSTL TAU", "10 -> 10", "shared"),
    Fixture("simvp_tout20", "openstl", ("simvp",), "OpenSTL SimVP (IncepU), frame roll-out", "10 -> 20", "shared"),
    Fixture("tau_tout20", "openstl", ("tau",), "OpenSTL TAU, frame roll-out", "10 -> 20", "shared"),
    _metavp("convmixer", "convmixer"),
    _metavp("convnext", "convnext"),
    _metavp("hornet", "hornet"),
    _metavp("mlpmixer", "mlp"),
    _metavp("moganet", "moga"),
    _metavp("poolformer", "poolformer"),
    _metavp("uniformer", "uniformer, N_T = 2: conv blocks only"),
    Fixture("simvp_uniformer_nt3", "openstl", ("uniformer",), "OpenSTL SimVP (uniformer, N_T = 3: attention block)",
            "10 -> 10", OURS),
    _metavp("van", "van"),
    _metavp("swin", "swin", OURS),
    _metavp("vit", "vit", OURS),
    Fixture("mmvp", "openstl", ("mmvp",), "OpenSTL MMVP", "10 -> 10", "shared"),
    Fixture("convlstm", "openstl", ("convlstm",), "OpenSTL ConvLSTM", "10 -> 10", "shared"),
    Fixture("predrnn", "openstl", ("predrnn",), "OpenSTL PredRNN", "10 -> 10", "shared"),
    Fixture("predrnn_tout20", "openstl", ("predrnn",), "OpenSTL PredRNN", "10 -> 20", "shared"),
    Fixture("predrnn_v2", "openstl", ("predrnn_v2",), "OpenSTL PredRNNv2 (reverse scheduled sampling)", "10 -> 10",
            "shared"),
    Fixture("predrnnpp", "openstl", ("predrnnpp",), "OpenSTL PredRNNpp", "10 -> 10", "shared"),
    Fixture("mim", "openstl", ("mim",), "OpenSTL MIM", "10 -> 10", "shared"),
    Fixture("e3dlstm", "openstl", ("e3dlstm",), "OpenSTL E3DLSTM", "10 -> 10", "shared"),
    Fixture("mau", "openstl", ("mau",), "OpenSTL MAU", "10 -> 10", "shared"),
    Fixture("phydnet", "openstl", ("phydnet",), "OpenSTL PhyDNet", "10 -> 10", "shared"),
    Fixture("swinlstm_d", "openstl", ("swinlstm",), "OpenSTL SwinLSTM_D", "10 -> 10", OURS),
    Fixture("predformer_tsst", "predformer", ("predformer", "predformer_quad"),
            "PredFormer PredFormer_Quadruplet_TSST", "10 -> 10", "shared"),
)


@dataclass(frozen=True)
class Evidence:
    """One fixture's check as the report shows it: ``max_abs_diff`` as measured by :func:`main` (None: never
    measured), ``passed`` = it is within ``tolerance``."""

    fixture: str
    models: tuple[str, ...]
    reference: str
    frames: str
    written_by: str
    tolerance: float
    max_abs_diff: float | None
    measured_at: str | None  # ISO date of the measurement
    measured_with: str | None  # torch version and machine of the measurement

    @property
    def passed(self) -> bool | None:
        return None if self.max_abs_diff is None else self.max_abs_diff <= self.tolerance


def measure(fixture: Fixture, data_dir: Path = REPO_FIXTURES) -> float:
    """max |stbench - reference| of one fixture, loaded through the public converter (fp32, CPU, eval mode)."""
    import torch

    fx = torch.load(Path(data_dir) / fixture.source / f"{fixture.name}.pt", map_location="cpu", weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # weights the published forward never reads are reported; not our concern here
        if fixture.source == "predformer":
            from stbench.interop.predformer import from_predformer

            model = from_predformer(fx["config"], fx["state_dict"])
        else:
            from stbench.interop.openstl import from_openstl

            model = from_openstl(fx["method"], fx["config"], fx["state_dict"])
    with torch.no_grad():
        pred = model(fx["inputs"].float()).pred
    if pred.shape != fx["pred"].shape:
        raise ValueError(f"{fixture.name}: prediction of shape {tuple(pred.shape)}, reference "
                         f"{tuple(fx['pred'].shape)}")
    return float((pred - fx["pred"].float()).abs().max().item())


def load_measured(path: Path = MEASURED_FILE) -> dict[str, Any]:
    """The file :func:`main` wrote: ``{"tolerance", "measured_at", "measured_with", "fixtures": {name: diff}}``."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def evidence_for(model: str, path: Path = MEASURED_FILE) -> list[Evidence]:
    """Every fixture that checks ``model`` (a zoo name; ``tau@patch`` has none: another architecture)."""
    data = load_measured(path)
    measured = data.get("fixtures") or {}
    return [Evidence(f.name, f.models, f.reference, f.frames, f.written_by, float(data.get("tolerance", TOLERANCE)),
                     measured.get(f.name), data.get("measured_at"), data.get("measured_with"))
            for f in FIXTURES if model in f.models]


def _cpu_name() -> str:
    """'AMD EPYC 9R14' from /proc/cpuinfo where there is one, else the machine type ('x86_64 CPU')."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{platform.machine()} CPU"


def main(argv: list[str] | None = None) -> int:
    """Measure every fixture and write :data:`MEASURED_FILE` (the only writer of that file)."""
    import argparse

    import torch

    p = argparse.ArgumentParser(prog="python -m stbench.interop.equivalence", description=main.__doc__)
    p.add_argument("--data", type=Path, default=REPO_FIXTURES, help="folder with openstl/ and predformer/ fixtures")
    p.add_argument("--out", type=Path, default=MEASURED_FILE)
    args = p.parse_args(argv)
    diffs = {}
    for f in FIXTURES:
        diffs[f.name] = measure(f, args.data)
        print(f"{f.name:22s} max |diff| {diffs[f.name]:.2g}" + ("" if diffs[f.name] <= TOLERANCE else "  ABOVE 1e-5"))
    out = {"tolerance": TOLERANCE, "measured_at": _dt.date.today().isoformat(),
           "measured_with": f"torch {torch.__version__}, {_cpu_name()} ({torch.get_num_threads()} threads), fp32",
           "fixtures": diffs, "written_by": "python -m stbench.interop.equivalence"}
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if all(d <= TOLERANCE for d in diffs.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
