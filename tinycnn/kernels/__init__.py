"""The math of every layer as pure functions on arrays.

``reference`` is readable NumPy (the specification); ``fast`` has the same functions,
JIT-compiled with Numba. Layers reach them through :func:`tinycnn.backend.kernels`.
"""
