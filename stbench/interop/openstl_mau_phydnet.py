"""OpenSTL MAU and PhyDNet weights -> the stbench ``mau`` and ``phydnet`` models.

Key maps (by structure: any number of layers, any widths):

MAU (``MAU_Model``)
    encoders.0.encoder_t_conv-1.*          -> encoder.stem.*
    encoders.{i+1}.encoder_t{i}.*          -> encoder.down.{i}.*
    decoders.{i}.c_decoder{i}.*            -> decoder.up.{i}.*
    srcnn.0.*                              -> decoder.head.*
    cell_list.{l}.conv_X.0.* / .conv_X.1.* -> temporal.cells.{l}.conv_X.* / .norm_X.*   (X in t, t_next, s, s_next)
    merge.*, conv_last_sr.*                -> dropped: built, never called by the forward

PhyDNet (``PhyDNet_Model``; its ``encoder`` module holds the codec AND both recurrent branches)
    encoder.encoder_E.*                    -> encoder.net.*     (the general image encoder)
    encoder.decoder_D.*                    -> decoder.net.*     (the general image decoder, sigmoid after)
    encoder.{encoder_Ep,encoder_Er,decoder_Dp,decoder_Dr}.* -> temporal.{same}.*
    encoder.phycell.cell_list.0.*          -> temporal.phycell.*
    encoder.convcell.cell_list.{l}.conv.*  -> temporal.convlstm.{l}.conv.*
    phycell.*, convcell.*                  -> the same modules registered twice in OpenSTL's model; checked
                                              equal to the encoder.* copies, then dropped
    k2m._M*, k2m._invM*                    -> constant moment matrices; checked against stbench's, dropped
"""

from __future__ import annotations

import re
from typing import Any

import torch

from stbench.errors import CheckpointError
from stbench.interop.openstl import load_mapped


def _ints(spec: Any) -> list[int]:
    if isinstance(spec, str):
        return [int(s) for s in spec.split(",") if s.strip()]
    if isinstance(spec, int):
        return [spec]
    return [int(s) for s in spec]


def _shape(cfg: dict[str, Any]) -> tuple[tuple[int, int, int, int], int]:
    t_in, C, H, W = (int(v) for v in cfg["in_shape"])
    t_in = int(cfg.get("pre_seq_length", t_in))
    return (t_in, C, H, W), int(cfg["aft_seq_length"])


# ---------------------------------------------------------------------------------------------
# MAU
# ---------------------------------------------------------------------------------------------
_MAU_CELL = re.compile(r"cell_list\.(\d+)\.(conv_t_next|conv_s_next|conv_t|conv_s)\.([01])\.(weight|bias)")
_MAU_ENC = re.compile(r"encoders\.(\d+)\.encoder_t(?:_conv-1|(\d+))\.(weight|bias)")
_MAU_DEC = re.compile(r"decoders\.(\d+)\.c_decoder(\d+)\.(weight|bias)")


def _map_mau(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    mapped, unused = {}, []
    for k, v in sd.items():
        if m := _MAU_CELL.fullmatch(k):
            layer, conv, idx, p = m.groups()
            name = conv if idx == "0" else "norm" + conv[len("conv"):]
            mapped[f"temporal.cells.{layer}.{name}.{p}"] = v
        elif m := _MAU_ENC.fullmatch(k):
            seq, level, p = m.groups()
            mapped["encoder.stem." + p if level is None else f"encoder.down.{int(seq) - 1}.{p}"] = v
        elif m := _MAU_DEC.fullmatch(k):
            mapped[f"decoder.up.{m.group(1)}.{m.group(3)}"] = v
        elif k.startswith("srcnn.0."):
            mapped["decoder.head." + k[len("srcnn.0."):]] = v
        elif k.startswith(("merge.", "conv_last_sr.")):
            unused.append(k)
        else:
            raise CheckpointError(f"OpenSTL MAU weight '{k}' is not part of OpenSTL's MAU_Model; pass the state "
                                  "dict of a MAU checkpoint")
    return mapped, unused


def _convert_mau(cfg: dict[str, Any], sd: dict[str, torch.Tensor]):
    import stbench

    if int(cfg.get("patch_size", 1)) != 1:
        # OpenSTL's MAU sizes its first conv for patch_size**2 * C channels but never patches the frames,
        # so only patch_size = 1 runs there
        raise CheckpointError(f"OpenSTL's MAU runs only with patch_size=1 (it never patches its frames); the "
                              f"config says patch_size={cfg['patch_size']}")
    if cfg.get("model_mode", "normal") != "normal":
        raise CheckpointError("OpenSTL MAU with model_mode='recall' (encoder skips into the decoder) is not "
                              "supported; stbench's mau uses model_mode='normal', the Moving MNIST config")
    if int(cfg.get("stride", 1)) != 1:
        raise CheckpointError(f"OpenSTL MAU with stride={cfg['stride']} is not supported; use stride=1")
    in_shape, t_out = _shape(cfg)
    sizes = _ints(cfg["num_hidden"])
    model = stbench.create_model("mau", in_shape=in_shape, t_out=t_out, num_hidden=tuple(sizes),
                                 num_layers=len(sizes), filter_size=int(cfg["filter_size"]),
                                 sr_size=int(cfg.get("sr_size", 4)), tau=int(cfg.get("tau", 5)),
                                 cell_mode=str(cfg.get("cell_mode", "normal")))
    mapped, unused = _map_mau(sd)
    return load_mapped(model, mapped, source="OpenSTL MAU", unused=unused)


# ---------------------------------------------------------------------------------------------
# PhyDNet
# ---------------------------------------------------------------------------------------------
_PHY_BLOCK = re.compile(r"(encoder_E|encoder_Ep|encoder_Er|decoder_D|decoder_Dp|decoder_Dr)\.(?:up)?c(\d)\.main\.(\d)\."
                        r"(weight|bias)")
_PHY_PREFIX = {"encoder_E": "encoder.net", "decoder_D": "decoder.net", "encoder_Ep": "temporal.enc_phys",
               "encoder_Er": "temporal.enc_conv", "decoder_Dp": "temporal.dec_phys", "decoder_Dr": "temporal.dec_conv"}
_PHY_CELL = {"F.conv1": "conv1", "F.bn1": "norm", "F.conv2": "conv2", "convgate": "gate"}


def _map_phydnet(sd: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    mapped: dict[str, torch.Tensor] = {}
    own_buffers = dict(model.temporal.named_buffers())
    for k, v in sd.items():
        if k.startswith(("phycell.", "convcell.")):  # the same modules as encoder.phycell / encoder.convcell
            twin = sd.get("encoder." + k)
            if twin is None or not torch.equal(twin, v):
                raise CheckpointError(f"OpenSTL PhyDNet weight '{k}' differs from 'encoder.{k}'; in OpenSTL they "
                                      "are one module, so the checkpoint is inconsistent")
            continue
        if k.startswith("k2m."):  # constant moment matrices (inverses unused); rtol: checkpoints may be fp16
            name = "moment_" + k[len("k2m._"):]
            if name in own_buffers and not torch.allclose(own_buffers[name].double(), v.double(), rtol=1e-3, atol=1e-6):
                raise CheckpointError(f"OpenSTL PhyDNet buffer '{k}' is not the moment matrix stbench uses")
            continue
        rest = k[len("encoder."):] if k.startswith("encoder.") else ""
        if m := _PHY_BLOCK.fullmatch(rest):
            part, j, i, p = m.groups()
            mapped[f"{_PHY_PREFIX[part]}.{int(j) - 1}.{i}.{p}"] = v
        elif m := re.fullmatch(r"decoder_D\.upc3\.(weight|bias)", rest):
            mapped[f"decoder.net.2.{m.group(1)}"] = v
        elif m := re.fullmatch(r"phycell\.cell_list\.0\.(F\.conv1|F\.bn1|F\.conv2|convgate)\.(weight|bias)", rest):
            mapped[f"temporal.phycell.{_PHY_CELL[m.group(1)]}.{m.group(2)}"] = v
        elif m := re.fullmatch(r"convcell\.cell_list\.(\d+)\.conv\.(weight|bias)", rest):
            mapped[f"temporal.convlstm.{m.group(1)}.conv.{m.group(2)}"] = v
        else:
            raise CheckpointError(f"OpenSTL PhyDNet weight '{k}' is not part of OpenSTL's PhyDNet_Model (one "
                                  "PhyCell layer); pass the state dict of a PhyDNet checkpoint")
    return mapped


def _convert_phydnet(cfg: dict[str, Any], sd: dict[str, torch.Tensor]):
    import stbench

    in_shape, t_out = _shape(cfg)
    p = int(cfg.get("patch_size", 4))
    p = p if p in (2, 4) else 4  # OpenSTL's rule: any other patch size means 4
    # widths are fixed in OpenSTL's code; read them from the weights so any variant maps by structure
    nf = int(sd["encoder.encoder_E.c1.main.0.weight"].shape[0])
    phy = sd["encoder.phycell.cell_list.0.F.conv1.weight"]
    n_rnn = len({k for k in sd if re.fullmatch(r"encoder\.convcell\.cell_list\.\d+\.conv\.weight", k)})
    rnn = tuple(int(sd[f"encoder.convcell.cell_list.{i}.conv.weight"].shape[0]) // 4 for i in range(n_rnn))
    model = stbench.create_model("phydnet", in_shape=in_shape, t_out=t_out, patch_size=p, nf=nf,
                                 phy_hidden=int(phy.shape[0]), phy_kernel=int(phy.shape[-1]), rnn_hidden=rnn)
    mapped = _map_phydnet(sd, model)
    return load_mapped(model, mapped, source="OpenSTL PhyDNet")


def convert(method: str, cfg: dict[str, Any], sd: dict[str, torch.Tensor]):
    if method == "mau":
        return _convert_mau(cfg, sd)
    if method == "phydnet":
        return _convert_phydnet(cfg, sd)
    raise CheckpointError(f"the MAU/PhyDNet converter does not handle OpenSTL method '{method}'")
