"""The DUT firmware: C sources, the model compiler, the build and the QEMU board.

``src/api`` is the MLPerf Tiny protocol layer and the porting API's header, ``src/port`` this
project's port of that API, ``src/board`` the board support (``board.h``; ``mps2/`` for QEMU's MPS2
boards), ``src/model/model.h`` the interface a compiled model implements, ``src/kernels`` the int8
kernels. :mod:`.boards` lists the boards, :mod:`.build` builds and caches a firmware ELF.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
SRC = ROOT / "src"
API = SRC / "api"
PORT = SRC / "port"
BOARD = SRC / "board"
MODEL = SRC / "model"
KERNELS = SRC / "kernels"
MAIN = SRC / "main.c"
