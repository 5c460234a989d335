"""Built-in encoders, decoders, temporal modules and named models (imported through the
``stbench`` entry points, like any plugin)."""

from stbench.models import (  # noqa: F401  (registration)
    e3dlstm,
    incepu,
    mau,
    metaformer,
    metavp,
    mim,
    mmvp,
    patch_codec,
    phydnet,
    predformer,
    predrnnpp,
    recurrent,
    simvp_codec,
    swinlstm,
    zoo,  # noqa: F401
    zoo_recurrent,
)
from stbench.models.base import (
    Decoder,
    Encoder,
    ModelOutput,
    ParallelTemporal,
    RecurrentTemporal,
    ShapeError,
    STModel,
    TemporalModule,
)

__all__ = ["Decoder", "Encoder", "ModelOutput", "ParallelTemporal", "RecurrentTemporal", "ShapeError",
           "STModel", "TemporalModule"]
