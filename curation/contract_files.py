"""Folder primitives of the dataset contract (curation.contract re-exports them): hard-link-or-copy a file,
swap a folder into place atomically, rename a folder aside before deleting it."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


def link_or_copy(src: Path, dst: Path) -> str:
    """Hard-link `src` to `dst` (no data copied); copy where linking is impossible. Returns which."""
    try:
        os.link(src, dst)
        return "linked"
    except OSError as e:  # EXDEV across devices, EPERM/ENOTSUP on filesystems without hard links, EMLINK
        log.info("cannot hard-link %s (%s): copying", src, e.strerror)
        shutil.copy2(src, dst)
        return "copied"


def replace_dir(new: Path, final: Path) -> None:
    """Move folder `new` to `final`, replacing what is there: the old folder is renamed aside first and
    deleted after the swap, so at every instant `final` holds either the old or the new content."""
    trash = rename_aside(final) if final.exists() else None
    os.rename(new, final)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def rename_aside(path: Path) -> Path:
    """Rename `path` to a hidden `.trash-` sibling (what clean_stale_staging sweeps) and return the new
    path."""
    trash = path.parent / f".trash-{path.name}-{uuid.uuid4().hex[:8]}"
    os.rename(path, trash)
    return trash
