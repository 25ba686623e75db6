"""Thin DVC stage scripts: read params.yaml, call facemask, write the declared outputs.

Before anything imports NumPy: keep NumPy off its AVX-512 kernels, whose float32/float64 power, exp,
sin and cos (SVML) round differently from the AVX2 and baseline ones. The synthetic benchmark's pixels
go through such functions, and the data stages must give the same bytes on every x86-64 machine
(`facemask.core.exact`, tests/test_determinism.py). Names a CPU or NumPy does not know are ignored.
"""
import os

os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL "
                                                  "AVX512_ICL AVX512_SPR")
