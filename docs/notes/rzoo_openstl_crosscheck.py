"""Cross-check of stbench's PredRNN++ / MIM / E3D-LSTM against OpenSTL's own model code, off the fixtures'
sizes: 3 layers, 3 channels, patch 2, a 16 x 24 frame, 5 -> 4 frames, filter 3. Checks the test-time
forecast and, in training mode with a random scheduled-sampling mask, the loss and every gradient.

Not a test (it needs OpenSTL's source): OPENSTL=/path/to/OpenSTL (commit c74deb5) PYTHONPATH=. python
docs/notes/rzoo_openstl_crosscheck.py. OpenSTL's package __init__ is bypassed (its model files need only torch).
Result on 2026-11-26: forecasts 2.1e-9 / 3.4e-8 / 2.2e-7 max abs error; train losses equal; max relative
gradient error 5.4e-7 / 5.8e-7 / 1.6e-6.
"""
import importlib.util
import os
import sys
import types
import warnings

import torch

from stbench.interop.openstl import from_openstl
from stbench.interop.openstl_rnn_zoo import KEY_MAPS, patch_permutation

ROOT = os.path.join(os.environ.get("OPENSTL", "OpenSTL"), "openstl")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m


pkg = types.ModuleType("openstl")
pkg.__path__ = []
sys.modules["openstl"] = pkg
mods = types.ModuleType("openstl.modules")
sys.modules["openstl.modules"] = mods
for f in ["predrnn_modules", "predrnnpp_modules", "mim_modules", "e3dlstm_modules"]:
    for k, v in vars(_load(f"ref_{f}", f"{ROOT}/modules/{f}.py")).items():
        if isinstance(v, type):
            setattr(mods, k, v)
M = {c: getattr(_load(f"ref_{f}", f"{ROOT}/models/{f}.py"), c)
     for f, c in [("predrnnpp_model", "PredRNNpp_Model"), ("mim_model", "MIM_Model"),
                  ("e3dlstm_model", "E3DLSTM_Model")]}
pu = _load("openstl_predrnn_utils", f"{ROOT}/utils/predrnn_utils.py")
torch.set_num_threads(1)
torch.manual_seed(0)
T, C, H, W, p, tout = 5, 3, 16, 24, 2, 4
for method, cls, nh in [("PredRNNpp", "PredRNNpp_Model", [8, 8, 8]), ("MIM", "MIM_Model", [8, 8, 8]),
                        ("E3DLSTM", "E3DLSTM_Model", [8, 8, 8])]:
    cfg = types.SimpleNamespace(in_shape=[T, C, H, W], patch_size=p, filter_size=3, stride=1, layer_norm=0,
                                pre_seq_length=T, aft_seq_length=tout, total_length=T + tout,
                                reverse_scheduled_sampling=0)
    ref = M[cls](len(nh), nh, cfg).eval()
    with torch.no_grad():
        for prm in ref.parameters():
            prm.copy_(prm * (1 + 0.2 * torch.randn_like(prm)) + 0.05 * torch.randn_like(prm))
    x, y = torch.rand(2, T, C, H, W), torch.rand(2, tout, C, H, W)
    ims = torch.cat([x, y], 1).permute(0, 1, 3, 4, 2).contiguous()
    dat = pu.reshape_patch(ims, p)
    flag = torch.zeros(2, tout - 1, H // p, W // p, p * p * C)
    with torch.no_grad():
        gen, _ = ref(dat, flag, return_loss=False)
        theirs = pu.reshape_patch_back(gen, p)[:, -tout:].permute(0, 1, 4, 2, 3)
    conf = dict(in_shape=[T, C, H, W], patch_size=p, filter_size=3, num_hidden=",".join(map(str, nh)),
                aft_seq_length=tout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_m = from_openstl(method, conf, ref.state_dict())
    with torch.no_grad():
        ours = ours_m(x).pred
    print(method, tuple(ours.shape), (ours - theirs).abs().max().item())

# training mode: loss and every gradient under a scheduled-sampling mask

def grads_check(method, cls, nh):
    cfg = types.SimpleNamespace(in_shape=[T, C, H, W], patch_size=p, filter_size=3, stride=1, layer_norm=0,
                                pre_seq_length=T, aft_seq_length=tout, total_length=T + tout,
                                reverse_scheduled_sampling=0)
    ref = M[cls](len(nh), nh, cfg)
    with torch.no_grad():
        for prm in ref.parameters():
            prm.copy_(prm * (1 + 0.2 * torch.randn_like(prm)) + 0.05 * torch.randn_like(prm))
    conf = dict(in_shape=[T, C, H, W], patch_size=p, filter_size=3, num_hidden=",".join(map(str, nh)),
                aft_seq_length=tout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_m = from_openstl(method, conf, ref.state_dict()).train()
    x, y = torch.rand(2, T, C, H, W), torch.rand(2, tout, C, H, W)
    samp = (torch.rand(2, tout - 1) < 0.5).float()
    ims = torch.cat([x, y], 1).permute(0, 1, 3, 4, 2).contiguous()
    dat = pu.reshape_patch(ims, p)
    flag = samp[:, :, None, None, None].expand(2, tout - 1, H // p, W // p, p * p * C).contiguous()
    _, loss_ref = ref(dat, flag)
    loss_ref.backward()
    mask = torch.cat([torch.ones(2, T - 1), samp], 1)
    out = ours_m(x, y, sampling_mask=mask)
    loss, _ = ours_m.loss(out, x, y)
    loss.backward()
    g_ref = {k: prm.grad if prm.grad is not None else torch.zeros_like(prm) for k, prm in ref.named_parameters()}
    mapped, _ = KEY_MAPS[method.lower()](g_ref, len(nh), patch_permutation(C, p))
    ours_g = dict(ours_m.named_parameters())
    err = max((mapped[k] - ours_g[k].grad).abs().max().item() / (mapped[k].abs().max().item() + 1e-12) for k in mapped)
    print(method, "train loss", loss_ref.item(), loss.item(), "max rel grad err", err)

for method, cls in [("PredRNNpp", "PredRNNpp_Model"), ("MIM", "MIM_Model"), ("E3DLSTM", "E3DLSTM_Model")]:
    grads_check(method, cls, [8, 8, 8])
