import os

import pytest
import torch

# Tests are sized for a 2-core CPU; keep torch from oversubscribing when pytest runs alongside others.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def smoke_model(name: str, **kw):
    """The named model ``name`` at its ``smoke`` preset sizes (the tiny test sizes its registry entry carries,
    resolved as ``stbench run --preset smoke`` resolves them), built for the data shapes and options in ``kw``
    (``in_shape=``, ``t_out=``, ...); ``kw`` wins over the preset sizes, as a user's override does."""
    import stbench
    from stbench.recipes import load_recipe

    return stbench.create_model(name, recipe_defaults=load_recipe("mmnist", name, "smoke").model_kw, **kw)
