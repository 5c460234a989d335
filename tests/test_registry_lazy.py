"""The registry imports only the built-in files a lookup needs (stbench.builtin_index), and the index is current.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds everything).
"""

import json
import os
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


def test_builtin_index_is_current_and_lists_every_registering_module():
    """stbench.builtin_index: MODULES names every stbench module whose import registers a component, and
    INDEX is what they register now (a fresh interpreter, every stbench module imported)."""
    out = _py("import importlib, pkgutil, stbench.models, stbench.data\n"
              "from stbench import builtin_index as B, registry as R\n"
              "for pkg in (stbench.models, stbench.data):\n"
              "    for info in pkgutil.iter_modules(pkg.__path__):\n"
              "        importlib.import_module(f'{pkg.__name__}.{info.name}')\n"
              "stray = sorted({e.module for r in R.BUILTIN_REGISTRIES for e in r._entries.values()\n"
              "                if e.source == R.BUILTIN and e.module not in B.MODULES})\n"
              "out = {'stray': stray, 'current': R.builtin_index_now() == B.INDEX}")
    assert not out["stray"], f"add {out['stray']} to MODULES in stbench/builtin_index.py"
    assert out["current"], "the built-in index is stale: run `python -m stbench.registry`"


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
