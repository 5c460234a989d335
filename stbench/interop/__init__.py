"""Load weights written by other toolkits into stbench models (function-equivalent, not just shape).

- :func:`stbench.interop.openstl.from_openstl` -- OpenSTL's released / Lightning checkpoints.
- :func:`stbench.interop.predformer.from_predformer` -- PredFormer's checkpoints.

Each importer keeps its key map with itself, never with the model it fills.
"""
