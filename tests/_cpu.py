"""A different CPU, as far as this one can pretend, for tests that compare bytes across SIMD kernels."""
from __future__ import annotations

#: OpenCV without AVX/AVX2/FMA, NumPy at its x86-64-v2 baseline, OpenBLAS's generic SSE3 kernels, one thread
#: everywhere: environment variables for a fresh process.
OTHER_CPU = {"OPENCV_CPU_DISABLE": "AVX512_SKX,AVX2,FMA3,AVX", "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4",
             "OPENBLAS_CORETYPE": "Prescott", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "OPENCV_FOR_THREADS_NUM": "1"}
