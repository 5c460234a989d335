"""Built-in encoders, decoders, temporal modules and named models (imported through the
``stbench`` entry points, like any plugin)."""

from stbench.models import (  # noqa: F401  (registration)
    incepu,
    mau,
    metaformer,
    metavp,
    mmvp,
    patch_codec,
    phydnet,
    predformer,
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
