"""Built-in encoders, decoders, temporal modules and named models: one file per method in this
package, each registering its components with the decorators of :mod:`stbench.registry`. The six seed
models are the one exception (README, "What is where"): their temporal modules sit in ``incepu.py`` /
``metaformer.py`` / ``recurrent.py`` and their named models in ``zoo.py`` / ``zoo_recurrent.py``, because
later method files import both halves.

The registry imports its files lazily (:mod:`stbench.builtin_index`): ``create_model("tau")`` imports the
files that register ``tau`` and the parts it is built from, not every model. A new built-in is a new file
here, named in ``stbench/builtin_index.py``.
"""

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
