"""The registry imports only the built-in files a lookup needs, and a new built-in is one new file.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds everything).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("stbench.models.metavp", "stbench.models.predformer", "stbench.models.swinlstm", "stbench.models.mmvp",
         "stbench.models.e3dlstm", "stbench.data.weather", "stbench.data.well", "stbench.data.kth")


def _py(code: str, root: Path = ROOT) -> dict:
    """Run ``code`` (which sets ``out``) in a fresh interpreter with ``root`` first on the path; return ``out``
    plus the stbench modules it imported."""
    prog = f"import json, sys\n{code}\nout['modules'] = sorted(m for m in sys.modules if m.startswith('stbench'))\n" \
           "print(json.dumps(out))"
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", prog], env=env, cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_one_model_imports_only_its_parts():
    out = _py("import stbench\nm = stbench.create_model('tau', hid_S=8, N_S=2, hid_T=16, N_T=2)\n"
              "out = {'temporal': m.names['temporal'], 'encoder': m.names['encoder']}")
    assert (out["temporal"], out["encoder"]) == ("tau", "simvp")
    # the parts tau is built from, found through the same lazy lookup (TEMPORAL 'tau', ENCODERS 'simvp')
    assert {"stbench.models.zoo", "stbench.models.metaformer", "stbench.models.simvp_codec"} <= set(out["modules"])
    assert not set(HEAVY) & set(out["modules"])
    assert "stbench.models.zoo_recurrent" not in out["modules"]


def test_recurrent_model_finds_its_cell_and_codec():
    out = _py("import stbench\nm = stbench.create_model('predrnn', num_hidden=(4, 4), filter_size=3)\n"
              "out = {'recurrent': m.recurrent}")
    assert out["recurrent"]
    assert {"stbench.models.zoo_recurrent", "stbench.models.recurrent", "stbench.models.patch_codec"} <= set(
        out["modules"])
    assert not set(HEAVY) & set(out["modules"])


def test_one_dataset_imports_neither_other_datasets_nor_torch():
    out = _py("from stbench.data import get_dataset\nout = {'name': get_dataset('mmnist').spec.name, "
              "'torch': 'torch' in sys.modules}")
    assert out["name"] == "mmnist" and not out["torch"]
    assert not set(HEAVY) & set(out["modules"])


def test_listing_imports_everything():
    out = _py("import stbench\nfrom stbench.registry import DATASETS, METRICS\n"
              "out = {'models': stbench.list_models(), 'datasets': DATASETS.names(), 'metrics': METRICS.names()}")
    # every built-in model file contributes (independent of the scan: these are the published names)
    assert {"tau", "simvp", "convlstm", "predrnn_v2", "swin", "vit", "predformer", "swinlstm", "mmvp", "e3dlstm",
            "mim", "mau", "phydnet", "predrnnpp"} <= set(out["models"])
    assert {"mmnist", "taxibj", "kth", "human", "ns2d", "well", "weather_t2m_5_625"} <= set(out["datasets"])
    assert {"mse", "ssim", "rmse", "rel_l2", "mse_denorm"} <= set(out["metrics"])
    assert set(HEAVY) <= set(out["modules"])


def test_names_registered_unusually_are_still_found():
    """weather's dataset names are f-strings and the metric ``rmse`` lives in a separate module; a name that no
    file spells out is still found (the fallback imports everything)."""
    out = _py("from stbench.registry import DATASETS, METRICS\n"
              "out = {'weather': 'weather_tcc_5_625' in DATASETS, 'rmse': METRICS.get('rmse').__name__, "
              "'denorm': METRICS.entry('rmse_denorm').meta['label']}")
    assert out["weather"] and out["rmse"] == "rmse" and out["denorm"] == "RMSE (denorm.)"
    assert "stbench.models.metavp" not in out["modules"]


def test_unknown_name_is_the_same_one_line_error():
    out = _py("import stbench\ntry:\n    stbench.create_model('tua')\nexcept KeyError as e:\n    out = {'msg': str(e)}")
    msg = out["msg"]
    assert msg.startswith("unknown model 'tua'; did you mean 'tau'") and "\n" not in msg
    assert "predformer" in msg and "swinlstm" in msg  # the list is complete: every file was imported


def test_new_builtin_file_is_found_with_no_other_edit(tmp_path):
    """Adding a built-in temporal module (and a named model using it) touches only its own file."""
    shutil.copytree(ROOT / "stbench", tmp_path / "stbench", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "stbench" / "models" / "ident_xyz.py").write_text(
        "from stbench.models.base import ParallelTemporal\n"
        "from stbench.models.zoo import named\n"
        "from stbench.registry import MODELS, TEMPORAL\n\n\n"
        "@TEMPORAL.register()\n"
        "class IdentXyz(ParallelTemporal):\n"
        "    def __init__(self, *, in_shape, t_out, hid_T=4):\n"
        "        super().__init__()\n\n"
        "    def forward(self, z):\n"
        "        return z\n\n\n"
        "@MODELS.register(family='parallel', presets={'smoke': {'lr': 1e-3, 'model': {'hid_S': 4}}})\n"
        "def identxyz_net(**kw):\n"
        "    return named('identxyz_net', 'simvp', 'identxyz', {'hid_S': 8, 'N_S': 2}, **kw)\n"
    )
    out = _py("import stbench\nfrom stbench.registry import TEMPORAL\n"
              "m = stbench.create_model('identxyz_net', in_shape=(4, 1, 16, 16), t_out=4)\n"
              "out = {'file': stbench.__file__, 'temporal': m.names['temporal'],\n"
              "       'source': TEMPORAL.entry('identxyz').source,\n"
              "       'before_list': 'stbench.models.metavp' in sys.modules,\n"
              "       'listed': stbench.list_models('ident*')}",
              root=tmp_path)
    assert Path(out["file"]).is_relative_to(tmp_path)
    assert out["temporal"] == "identxyz" and out["source"] == "built-in"
    assert not out["before_list"]  # found by its own file, without importing the other models
    assert out["listed"] == ["identxyz_net"]
    # and as a bare temporal module over the SimVP codec, by a fresh interpreter's first lookup
    out = _py("import stbench\nm = stbench.create_model('identxyz', in_shape=(4, 1, 16, 16), t_out=4, hid_S=4, "
              "N_S=2)\nout = {'t': m.names['temporal']}", root=tmp_path)
    assert out["t"] == "identxyz"


def test_plugin_reusing_a_builtin_name_is_still_refused(tmp_path):
    """Built-ins are imported lazily, yet a plugin registering a built-in's name is refused as before (the
    built-in file that registers the name is imported first), and its components keep source 'built-in'."""
    plug = tmp_path / "dup_plug.py"
    plug.write_text("from stbench.models.zoo import named\nfrom stbench.registry import MODELS\n"
                    "@MODELS.register()\ndef tau(**kw):\n    return None\n")
    out = _py(f"from stbench.registry import MODELS, load_plugin\ntry:\n    load_plugin({str(plug)!r})\n"
              "    out = {'msg': ''}\nexcept KeyError as e:\n    out = {'msg': str(e)}\n"
              "out['source'] = MODELS.entry('simvp').source")
    assert out["msg"].startswith("duplicate model name 'tau': already registered by built-in")
    assert out["source"] == "built-in"  # zoo.py imported from the plugin's import line is still built-in
