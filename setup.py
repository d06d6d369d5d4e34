"""Build script for the one optional C extension; everything else is in setup.cfg.

dashd.wire._sendmany (issue 17) sends one broadcast frame to many sockets in
one C loop. It is built from source with the machine's compiler during
`pip install`; `optional=True` makes a failed build (no compiler, no Python
headers, not Linux) a warning, and dashd.wire.broadcast then uses the same
loop written in Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("dashd.wire._sendmany", ["src/dashd/wire/_sendmany.c"], optional=True, extra_compile_args=["-O2"]),
    ],
)
