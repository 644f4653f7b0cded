"""Fixtures for the MLPerf Tiny acceptance tests: the shared reference data (or a skip), the
synthetic datasets (built once per session in a temporary folder) and a memo of CLI runs, so that
several tests can check one run without running it again."""

from __future__ import annotations

from pathlib import Path

import pytest

import _helpers as h


def _need_shared(*paths: Path) -> None:
    for path in (h.SHARED, *paths):
        if not path.exists():
            pytest.skip(f"MLPerf Tiny reference data not found at {path}")


@pytest.fixture(scope="session")
def kws_root() -> Path:
    _need_shared(h.DATASETS / "kws01" / "y_labels.csv", h.MODELS / "kws", h.MODELS_ONNX / "kws")
    return h.DATASETS


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> Path:
    """Synthetic ic01 (also read by ic02) and vww01 folders in the EEMBC layout, 20 files each."""
    _need_shared(h.MODELS / "ic", h.MODELS / "ic2", h.MODELS / "vww")
    root = tmp_path_factory.mktemp("images")
    h.make_images(root, "ic01", (32, 32, 3), classes=10)
    h.make_images(root, "vww01", (96, 96, 3), classes=2)
    return root


@pytest.fixture(scope="session")
def ad_dataset(tmp_path_factory) -> tuple[Path, list[tuple[str, int]]]:
    """(root holding ad01/, [(file, label), ...]): the real sample plus 5 variants derived from it."""
    _need_shared(h.AD_SAMPLE, h.MODELS / "ad", h.MODELS_ONNX / "ad")
    return h.make_ad01(tmp_path_factory.mktemp("ad"))


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory):
    """``cli_run(*run_args, expect_rc=0)`` -> (summary, run_dir): one ``tinyharness run`` per distinct
    argument list in the session (later calls get the same run back); ``expect_rc=None`` accepts
    a complete run that is VALID or INVALID."""
    memo: dict[tuple, tuple[dict, Path]] = {}

    def call(*args, expect_rc: int | None = 0) -> tuple[dict, Path]:
        key = tuple(map(str, args))
        if key not in memo:
            sut = key[key.index("--sut") + 1]
            h.require_runtime(sut)
            out = tmp_path_factory.mktemp("run")
            memo[key] = h.run(out, *key, expect_rc=expect_rc)
        summary, run_dir = memo[key]
        if expect_rc is not None:
            assert summary["valid"] is (expect_rc == 0)
        return summary, run_dir

    return call


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """``exported(benchmark, to, *export_args)`` -> path: ``tinyharness models export`` of the
    benchmark's float ONNX model, once per argument list in the session; a skip where torch,
    onnx2torch (and executorch or torchao where needed) are not installed."""
    import importlib.util

    memo: dict[tuple, Path] = {}

    def call(benchmark: str, to: str, *args) -> Path:
        key = (benchmark, to, *map(str, args))
        if key not in memo:
            need = ["torch", "onnx", "onnx2torch"] + (["executorch"] if to == "executorch" else [])
            need += ["executorch", "torchao"] if "int8" in key else []
            missing = sorted({m for m in need if importlib.util.find_spec(m) is None})
            if missing:
                pytest.skip(f"{', '.join(missing)} not installed "
                            "(pip install 'tinyharness[export,executorch]')")
            out = tmp_path_factory.mktemp("exported")
            done = h.tinyharness("models", "export", benchmark, "--to", to, *key[2:],
                                 "--output", out)
            assert done.returncode == 0, done.stderr
            memo[key] = next(p for p in out.iterdir() if p.suffix in (".pt2", ".pte"))
        return memo[key]

    return call
