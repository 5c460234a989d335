"""MMVP: Motion-Matrix-based Video Prediction (Zhong et al., ICCV 2023), as OpenSTL builds it.

How it maps onto encoder / temporal / decoder: MMVP's first and last steps are a parameter-free 2x
space-to-depth (pixel unshuffle) and its inverse, which is stbench's ``patch`` codec with patch_size=2.
Everything in between needs the whole sequence at several scales *and* the raw frames (the final
enhancer refines a decoded frame together with the input frames composed by the predicted motion),
so it is one temporal module, ``mmvp``, on the (B, T, 4C, H/2, W/2) latent:

1. RRDB encoder per frame: 3x3 conv + RRDBs, then strided residual blocks to 1/r0, 1/(r0 r1), ...;
   the last three scales are kept ("high" = second-to-last, "low" = last).
2. Filters (3 x conv-BN-LeakyReLU) on high and low; cosine similarity of every position in frame t
   with every position in frame t+1 gives (T-1) motion matrices (hw x hw) per scale.
3. Matrix predictor: a conv/3D-conv U-Net over the high-scale matrices predicts T_out future matrices;
   the low-scale ones are interpolated from them (bilinear over target positions, bicubic over source).
   All matrices are softmax-normalised (over the whole hw*hw matrix).
4. Composition: future frame t = sum over input frames s of (cumulative product of the matrices from s
   up to the t-th predicted one) applied to frame s's features, normalised by the weights' row sums.
   Done on the scales below "high" (space-to-depth'ed to the high grid), on high, on low, and on
   the raw frames (space-to-depth'ed to the high grid).
5. U-Net decoder on the composed features -> 4C channels; pixel shuffle to full resolution; the
   enhancer (conv + RRDBs + 1x1) maps [decoded frame, composed raw frame] to the output frame,
   which the module returns space-to-depth'ed again (the patch decoder undoes it exactly).

Faithful details: the composition recomputes the cumulative products for every future frame and for
every feature scale, and bilinear-"resizes" a feature map to its own size, as the published code does
(both change no value but count in fvcore's FLOPs). The output is reshaped (N, C, H, W) ->
(N, H, W, C) -> (B, T, C, H, W) as OpenSTL does, which reorders pixels when C > 1.
Not carried over: OpenSTL's ``scale_fuser_1``, ``scale_fuser_2`` and ``predictor.fuse_conv`` are built
but never used by its forward (the converter drops them; see :func:`unused_params`).
T_out: MMVP predicts as many frames as it observes here (stbench rolls out longer horizons); OpenSTL
predicts ``aft_seq_length`` frames directly, which equals T_in in its Moving MNIST config.
Training: OpenSTL's training step feeds inputs AND targets through the model (only the inputs'
matrices are used, but the BatchNorm statistics of the filters see the target frames too); stbench's
model sees only the inputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stbench.models.base import ParallelTemporal
from stbench.models.zoo import named_model
from stbench.registry import MODELS, TEMPORAL


# -- building blocks -----------------------------------------------------------------------------
class DenseBlock(nn.Module):
    """Residual dense block: four 3x3 convs, each seeing all earlier outputs; x + 0.2 * conv4(...)."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, nf, 3, 1, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.act(self.conv1(x))
        x2 = self.act(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.act(self.conv3(torch.cat((x, x1, x2), 1)))
        return self.conv4(torch.cat((x, x1, x2, x3), 1)) * 0.2 + x


class RRDB(nn.Module):
    """Residual in residual dense block: x + 0.2 * RDB3(RDB2(RDB1(x))), growth nf // 2."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = (DenseBlock(nf, nf // 2) for _ in range(3))

    def forward(self, x: Tensor) -> Tensor:
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class DownBlock(nn.Module):
    """LeakyReLU(ReLU(conv3x3(ReLU(conv3x3/2(x)))) + conv1x1/2(x)), then max-pool 2 if the factor is 4."""

    def __init__(self, c_in: int, c_out: int, factor: int = 2) -> None:
        super().__init__()
        if factor not in (2, 4):
            raise ValueError(f"mmvp downsampling factors must be 2 or 4, got {factor}")
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 2, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, 2)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.pool = nn.MaxPool2d(2) if factor == 4 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.conv2(F.relu(self.conv1(x)))) + self.shortcut(x)
        return F.leaky_relu(self.pool(y))


class UpBlock(nn.Module):
    """Transposed conv (kernel = stride = factor), optional concat with a skip, then 3x3 conv (no bias) + ReLU."""

    def __init__(self, c_in: int, c_out: int, factor: int, skip: bool) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, factor, factor)
        self.conv = nn.Sequential(nn.Conv2d(2 * c_out if skip else c_out, c_out, 3, padding=1, bias=False),
                                  nn.ReLU())

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        x = self.up(x)
        if skip is not None:
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)


def _conv_bn_lrelu(c_in: int, c_out: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.LeakyReLU()]
    return nn.Sequential(*layers)


class Conv3dBNAct(nn.Module):
    """(B, T, C, H, W) -> 3D conv over (T, H, W) -> BN -> LeakyReLU -> (B, T', C', H, W)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv3d = nn.Conv3d(c_in, c_out, 3, 1, 1)
        self.bn3d = nn.BatchNorm3d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 1, 3, 4)
        return F.leaky_relu(self.bn3d(self.conv3d(x))).permute(0, 2, 1, 3, 4)


class MatrixNet(nn.Module):
    """The "direct" matrix predictor: per source position, (T-1) embedded matrices -> T_out embeddings."""

    def __init__(self, t_prev: int, t_fut: int, c: int) -> None:
        super().__init__()
        self.t_fut = t_fut
        self.conv_pre_1, self.bn_pre_1 = nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)
        self.conv_pre_2, self.bn_pre_2 = nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)
        self.conv1_1, self.bn1_1 = nn.Conv2d(c, c, 3, 2, 1), nn.BatchNorm2d(c)
        self.conv3d_1 = Conv3dBNAct(c, c)
        self.conv_translate = nn.Sequential(nn.Conv2d(c * t_prev, c * t_fut, 1), nn.LeakyReLU())
        self.bn_translate = nn.BatchNorm2d(c * t_fut)
        self.conv2_1, self.bn2_1 = nn.Conv2d(c, 2 * c, 3, 2, 1), nn.BatchNorm2d(2 * c)
        if t_fut > 1:
            self.temporal_layer = Conv3dBNAct(2 * c, 2 * c)
        else:
            self.temporal_layer = nn.Sequential(nn.Conv2d(2 * c, 2 * c, 3, 1, 1), nn.LeakyReLU())
        self.conv3_1, self.bn3_1 = nn.Conv2d(3 * c, c, 3, 1, 1), nn.BatchNorm2d(c)
        self.conv4_1, self.bn4_1 = nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c)

    def forward(self, x: Tensor) -> Tensor:
        # x: (N, T-1, c, h, w) -> (N * T_out, c, h, w)
        N, T, c, h, w = x.shape
        x = x.reshape(N * T, c, h, w)
        x = F.leaky_relu(self.bn_pre_1(self.conv_pre_1(x)))
        x = F.leaky_relu(self.bn_pre_2(self.conv_pre_2(x)))
        x1 = F.leaky_relu(self.bn1_1(self.conv1_1(x)))
        x1 = self.conv3d_1(x1.reshape(N, T, *x1.shape[1:]))  # (N, T-1, c, h/2, w/2)
        h2, w2 = x1.shape[-2:]
        x1 = self.bn_translate(self.conv_translate(x1.reshape(N, T * c, h2, w2)))
        x1 = x1.reshape(N * self.t_fut, c, h2, w2)
        x2 = F.leaky_relu(self.bn2_1(self.conv2_1(x1)))
        if self.t_fut > 1:
            x2 = self.temporal_layer(x2.reshape(N, self.t_fut, *x2.shape[1:])).reshape(N * self.t_fut, *x2.shape[1:])
        else:
            x2 = self.temporal_layer(x2)
        x3 = F.leaky_relu(self.bn3_1(self.conv3_1(torch.cat((F.interpolate(x2, size=(h2, w2)), x1), dim=1))))
        return F.leaky_relu(self.bn4_1(self.conv4_1(F.interpolate(x3, size=(h, w)))))


class MatrixPredictor(nn.Module):
    """(B, T-1, hw, hw) motion matrices -> (B, T_out, hw, hw): each row (a source position) is embedded
    as an h x w image, predicted forward in time by :class:`MatrixNet`, and projected back."""

    def __init__(self, t_prev: int, t_fut: int, c: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.grid, self.t_fut = grid, t_fut
        self.conv1 = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.net = MatrixNet(t_prev, t_fut, c)
        self.out_conv = nn.Conv2d(c, 1, 3, padding=1, bias=False)

    def forward(self, m: Tensor) -> Tensor:
        B, T, hw, _ = m.shape
        h, w = self.grid
        x = self.conv1(m.reshape(B * T * hw, 1, h, w))
        x = x.reshape(B, T, hw, -1, h, w).permute(0, 2, 1, 3, 4, 5).reshape(B * hw, T, -1, h, w)
        out = self.out_conv(self.net(x))  # (B * hw * T_out, 1, h, w)
        return out.reshape(B, hw, self.t_fut, h * w).permute(0, 2, 1, 3)  # (B, T_out, hw, hw)


def similarity(feats: Tensor) -> Tensor:
    """(B, T, c, h, w) -> (B, T-1, hw, hw) cosine similarity of frame t's positions with frame t+1's."""
    B, T, c, h, w = feats.shape
    f = feats.permute(0, 1, 3, 4, 2)
    f = f / (torch.norm(f, dim=-1, keepdim=True) + 1e-6)
    prev = f[:, :-1].reshape(-1, h * w, c)
    nxt = f[:, 1:].reshape(-1, h * w, c)
    return torch.bmm(prev, nxt.permute(0, 2, 1)).reshape(B, T - 1, h * w, h * w)


def matrix_softmax(m: Tensor) -> Tensor:
    """Softmax over all hw*hw entries of each matrix."""
    B, T = m.shape[:2]
    return F.softmax(m.reshape(B, T, -1), dim=-1).reshape(m.shape)


def resize_matrices(m: Tensor, src: tuple[int, int], dst: tuple[int, int]) -> Tensor:
    """(B, T, hw, hw) on grid src -> grid dst: bilinear over the target positions, bicubic over the sources."""
    (sh, sw), (dh, dw) = src, dst
    B, T = m.shape[:2]
    x = F.interpolate(m.reshape(-1, 1, sh, sw), (dh, dw), mode="bilinear").reshape(B, T, sh, sw, dh, dw)
    x = x.permute(0, 1, 4, 5, 2, 3).reshape(-1, 1, sh, sw)
    x = F.interpolate(x, (dh, dw), mode="bicubic").reshape(B, T, dh, dw, dh, dw)
    return x.permute(0, 1, 4, 5, 2, 3).reshape(B, T, dh * dw, dh * dw)


def chain(mats: Tensor) -> Tensor:
    """(B, S, hw, hw) -> entry i = M_i @ M_{i+1} @ ... @ M_{S-1}, multiplied from the end."""
    out = mats.clone()
    for i in range(mats.shape[1] - 2, -1, -1):
        out[:, i] = torch.bmm(out[:, i].clone(), out[:, i + 1].clone())
    return out


def compose(feats: Tensor, mats: Tensor, t_prev: int, t_fut: int) -> Tensor:
    """feats (B, T, c, h, w), mats (B, T-1+T_out, hw, hw) -> (B*T_out, c, h, w) composed future features."""
    B, T, c, h, w = feats.shape
    src = feats.permute(0, 2, 1, 3, 4).reshape(B, c, T * h * w).permute(0, 2, 1)  # (B, T*hw, c)
    out = []
    for t in range(t_fut):
        active = torch.cat([mats[:, :t_prev - 1], mats[:, t_prev - 1 + t:t_prev + t]], dim=1)  # (B, T, hw, hw)
        weights = chain(active).reshape(B, T * h * w, h * w).permute(0, 2, 1)  # (B, hw target, T*hw source)
        norm = weights.sum(dim=-1).reshape(-1, 1, h * w) + 1e-6
        out.append((torch.bmm(weights, src).permute(0, 2, 1) / norm).reshape(B, c, h, w))
    return torch.stack(out, dim=1).reshape(-1, c, h, w)


class RRDBEncoder(nn.Module):
    def __init__(self, c_in: int, hid_S: int, ratios: list[int], n_rrdb: int) -> None:
        super().__init__()
        s = len(ratios)
        self.inconv = nn.Conv2d(c_in, hid_S, 3, 1, 1)
        self.block_rrdb = nn.Sequential(*(RRDB(hid_S) for _ in range(n_rrdb)))
        self.pre_downsample_block = nn.ModuleList(
            DownBlock(hid_S * 2 ** i, hid_S * 2 ** (i + 1), ratios[i]) for i in range(s - 2))
        self.downsample_high = DownBlock(hid_S * 2 ** (s - 2), hid_S * 2 ** (s - 1), ratios[-2])
        self.downsample_low = DownBlock(hid_S * 2 ** (s - 1), hid_S * 2 ** s, ratios[-1])

    def forward(self, x: Tensor) -> list[Tensor | None]:
        feats: list[Tensor | None] = [x := self.block_rrdb(self.inconv(x))]
        for block in self.pre_downsample_block:
            feats.append(x := block(x))
        feats.append(x := self.downsample_high(x))
        feats.append(self.downsample_low(x))
        return [None] * (len(feats) - 3) + feats[-3:]  # only the three coarsest scales are used


class RRDBDecoder(nn.Module):
    def __init__(self, c_out: int, hid_S: int, ratios: list[int], n_rrdb: int) -> None:
        super().__init__()
        s = len(ratios)
        self.upsample_block_low2high = UpBlock(hid_S * 2 ** s, hid_S * 2 ** (s - 1), ratios[-1], skip=True)
        self.upsample_block = nn.ModuleList(
            UpBlock(hid_S * 2 ** (i + 1), hid_S * 2 ** i, ratios[i], skip=i >= s - 2) for i in range(s - 2, -1, -1))
        self.rrdb_block = nn.Sequential(*(RRDB(hid_S) for _ in range(n_rrdb)))
        self.outc = nn.Conv2d(hid_S, c_out, 1)

    def forward(self, feats: list[Tensor | None]) -> Tensor:
        x = self.upsample_block_low2high(feats[-1], feats[-2])
        for i, block in enumerate(self.upsample_block):
            x = block(x, feats[-i - 3])
        return self.outc(self.rrdb_block(x))


class Enhancer(nn.Module):
    def __init__(self, c: int, hid_S: int, n_rrdb: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(2 * c, hid_S, 3, 1, 1), *(RRDB(hid_S) for _ in range(n_rrdb)))
        self.outconv = nn.Conv2d(hid_S, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.outconv(self.model(x))


# -- the temporal module ---------------------------------------------------------------------------
@TEMPORAL.register("mmvp")
class MMVPTemporal(ParallelTemporal):
    """MMVP on the 2x space-to-depth latent (B, T, 4C, H/2, W/2) of the ``patch`` codec (patch_size=2)."""

    #: torch 2.13's CPU kernels corrupt the heap in this model's channels_last backward (glibc aborts with
    #: "free(): invalid size" at 128 x 128, smoke sizes; NCHW runs clean), so MMVP trains NCHW only
    channels_last_unsupported = "trains NCHW only (channels_last corrupts memory in its CPU backward, torch 2.13)"

    def __init__(self, *, in_shape: tuple[int, int, int, int], t_out: int, hid_S: int = 32, hid_T: int = 192,
                 rrdb_encoder_num: int = 2, rrdb_decoder_num: int = 2, rrdb_enhance_num: int = 2,
                 downsample_setting: str | list[int] = "2,2,2") -> None:
        super().__init__()
        T, C4, h, w = in_shape
        if C4 % 4:
            raise ValueError(f"mmvp runs on the patch codec with patch_size=2 (4C channels); got {C4} channels")
        ratios = [int(r) for r in (downsample_setting.split(",") if isinstance(downsample_setting, str)
                                   else downsample_setting)]
        if len(ratios) < 2 or T < 2:
            raise ValueError(f"mmvp needs >= 2 downsampling ratios and >= 2 input frames, got {ratios}, T={T}")
        f_high, f_low = math.prod(ratios[:-1]), math.prod(ratios)
        if h % f_low or w % f_low:
            raise ValueError(f"mmvp with downsample_setting {ratios} needs H and W divisible by {2 * f_low}, "
                             f"got {2 * h}x{2 * w}")
        self.C, self.t_prev, self.t_fut = C4 // 4, T, T  # predicts T frames per pass (stbench rolls out more)
        self.ratios = ratios
        self.grid_high, self.grid_low = (h // f_high, w // f_high), (h // f_low, w // f_low)
        self.enc = RRDBEncoder(C4, hid_S, ratios, rrdb_encoder_num)
        s = len(ratios)
        self.filters = nn.ModuleList([_conv_bn_lrelu(hid_S * 2 ** (s - 1), hid_S, 3),
                                      _conv_bn_lrelu(hid_S * 2 ** s, 2 * hid_S, 3)])
        self.predictor = MatrixPredictor(T - 1, self.t_fut, hid_T, self.grid_high)
        self.dec = RRDBDecoder(C4, hid_S, ratios, rrdb_decoder_num)
        # scale of the pre-"high" feature i relative to the high grid: prod(ratios[i:s-1])
        self.pre_scales = [math.prod(ratios[i:s - 1]) for i in range(s - 1)]
        self.enhance = Enhancer(self.C, hid_S, rrdb_enhance_num)

    def forward(self, z: Tensor) -> Tensor:
        B, T, C4, h, w = z.shape
        x = z.reshape(B * T, C4, h, w)
        feats = self.enc(x)
        # motion matrices on the two coarsest scales
        g_high = self.filters[0](feats[-2])
        g_low = self.filters[1](feats[-1])
        prev_high = similarity(g_high.reshape(B, T, *g_high.shape[1:]))  # (B, T-1, hw, hw)
        prev_low = similarity(g_low.reshape(B, T, *g_low.shape[1:]))
        fut_high = self.predictor(prev_high)  # (B, T_out, hw, hw)
        fut_low = resize_matrices(fut_high, self.grid_high, self.grid_low)
        m_high = torch.cat([matrix_softmax(prev_high), matrix_softmax(fut_high)], dim=1)
        m_low = torch.cat([matrix_softmax(prev_low), matrix_softmax(fut_low)], dim=1)
        # compose future features at every used scale
        composed: list[Tensor | None] = []
        n = len(feats)
        for i, f in enumerate(feats):
            if f is None:
                composed.append(None)
                continue
            if i < n - 2:  # finer than "high": space-to-depth onto the high grid, compose, back
                r = self.pre_scales[i]
                f = F.pixel_unshuffle(F.interpolate(f, size=f.shape[-2:], mode="bilinear"), r)
                y = compose(f.reshape(B, T, *f.shape[1:]), m_high, self.t_prev, self.t_fut)
                composed.append(F.pixel_shuffle(y, r))
            else:
                m = m_high if i == n - 2 else m_low
                composed.append(compose(f.reshape(B, T, *f.shape[1:]), m, self.t_prev, self.t_fut))
        recon = F.pixel_shuffle(self.dec(composed), 2)  # (B*T_out, C, H, W)
        # compose the raw frames on the high grid and refine
        r = math.prod(self.ratios[:-1])
        raw = F.pixel_unshuffle(x, r)
        raw = compose(raw.reshape(B, T, *raw.shape[1:]), m_high, self.t_prev, self.t_fut)
        warped = F.pixel_shuffle(F.pixel_shuffle(raw, r), 2)  # (B*T_out, C, H, W)
        out = self.enhance(torch.cat([recon, warped], dim=1))
        H, W = out.shape[-2:]
        out = out.permute(0, 2, 3, 1).reshape(B * self.t_fut, self.C, H, W)  # OpenSTL's reshape (no-op at C=1)
        return F.pixel_unshuffle(out, 2).reshape(B, self.t_fut, C4, h, w)


def unused_params(hid_S: int = 32, hid_T: int = 192) -> int:
    """Parameters of OpenSTL's MMVP that its forward never uses (scale_fuser_1/2, predictor.fuse_conv)."""
    fuser_1 = (2 * hid_S * hid_S * 4 + hid_S) + 2 * hid_S * hid_S * 9  # ConvTranspose 2x2 + 3x3 conv, no bias
    fuser_2 = 2 * (hid_S * hid_S * 9 + hid_S + 2 * hid_S)  # two (3x3 conv + BN)
    fuse_conv = 2 * hid_T * hid_T * 9  # 3x3, no bias
    return fuser_1 + fuser_2 + fuse_conv


MMVP_PAPER = dict(patch_size=2, hid_S=32, hid_T=192, rrdb_encoder_num=2, rrdb_decoder_num=2, rrdb_enhance_num=2,
                  downsample_setting="2,2,2")


mmvp = named_model("mmvp", "patch", "mmvp", MMVP_PAPER)
MODELS.register(family="parallel", paper="MMVP (ICCV 2023), OpenSTL Moving MNIST config",
                presets={"paper": {"lr": 1e-3, "model": dict(MMVP_PAPER)},
                         "quick": {"lr": 3e-3, "batch_size": 4,
                                   "model": dict(MMVP_PAPER, hid_S=8, hid_T=32, rrdb_encoder_num=1,
                                                 rrdb_decoder_num=1, rrdb_enhance_num=1)},
                         "smoke": {"lr": 1e-3,
                                   "model": dict(MMVP_PAPER, hid_S=4, hid_T=8, rrdb_encoder_num=1,
                                                 rrdb_decoder_num=1, rrdb_enhance_num=1)}})(mmvp)
