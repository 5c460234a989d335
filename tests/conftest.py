import os

import pytest
import torch

# Tests are sized for a 2-core CPU; keep torch from oversubscribing when pytest runs alongside others.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
