"""A tiny synthetic dataset for training-loop tests: one 3x3 bright square moving at constant velocity.

16x16 frames, 4 -> 4 frames. Each sequence is fixed by (seed, split, index): start position and a
velocity in {-1, 0, 1}^2 (not both 0), bouncing off the borders. Copy-last-frame scores badly (the
square has moved) and so does predicting black frames, so beating both means the model has learned
the motion. The data is computed, not stored; the hand-computed floors are in tests/test_train.py.
"""

from __future__ import annotations

import numpy as np

from stbench.data.spec import Dataset, DatasetSpec

SIZE, SQ, T_IN, T_OUT = 16, 3, 4, 4


def square_sequences(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, T_IN + T_OUT, 1, SIZE, SIZE) uint8."""
    out = np.zeros((n, T_IN + T_OUT, 1, SIZE, SIZE), dtype=np.uint8)
    for i in range(n):
        pos = rng.integers(0, SIZE - SQ + 1, size=2)
        vel = np.array([0, 0])
        while not vel.any():
            vel = rng.integers(-1, 2, size=2)
        for t in range(T_IN + T_OUT):
            y, x = pos
            out[i, t, 0, y:y + SQ, x:x + SQ] = 255
            for d in range(2):  # bounce
                if not 0 <= pos[d] + vel[d] <= SIZE - SQ:
                    vel[d] = -vel[d]
            pos = pos + vel
    return out


class MovingSquare(Dataset):
    def __init__(self, *, n_train: int = 64, n_val: int = 32, n_test: int = 32, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.spec = DatasetSpec("moving_square", in_shape=(T_IN, 1, SIZE, SIZE), t_out=T_OUT,
                                sizes={"train": n_train, "val": n_val, "test": n_test})
        self._data = {split: square_sequences(np.random.default_rng([seed, k]), n)
                      for k, (split, n) in enumerate(self.spec.sizes.items())}

    def num_samples(self, split: str) -> int:
        return self.spec.sizes[split]

    def read(self, split: str, start: int, stop: int, *, epoch: int = 0) -> np.ndarray:
        return self._data[split][start:stop]
