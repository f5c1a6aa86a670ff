"""Opening input files (local paths or any fsspec URI, Hadoop spellings accepted) and what a file's name
or position says about its records (crawl id, stable ids)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote, urlparse

import fsspec

CRAWL_ID_RE = re.compile(r"CC-MAIN-\d{4}-\d{2}(?!\d)")


def fsspec_uri(path: str) -> str:
    """Hadoop URIs -> what fsspec opens: `file:/abs` -> `/abs`, `s3a://`/`s3n://` -> `s3://`."""
    if path.startswith("file:"):
        return unquote(urlparse(path).path)
    for scheme in ("s3a://", "s3n://"):
        if path.startswith(scheme):
            return "s3://" + path[len(scheme) :]
    return path


def storage_options(uri: str) -> dict:
    """fsspec options for `uri` from the environment, given explicitly: fsspec caches a filesystem per set of
    options, so an S3 filesystem made before AWS_ENDPOINT_URL changed (a test's moto server, a reconfigured
    endpoint) would otherwise be reused with the old endpoint."""
    if uri.startswith(("s3://", "s3a://", "s3n://")):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
    return {}


def url_to_fs(uri: str):
    """`fsspec.core.url_to_fs` with the environment's storage options (see storage_options)."""
    return fsspec.core.url_to_fs(uri, **storage_options(uri))


def open_input(path: str) -> BinaryIO:
    """Open an input file for binary streaming; a missing file is an error naming it."""
    uri = fsspec_uri(path)
    try:
        fs, fs_path = url_to_fs(uri)
    except ImportError as e:  # e.g. s3:// without s3fs installed
        raise ImportError(f"cannot open input {path!r}: {e}") from e
    try:
        exists = fs.exists(fs_path)
        is_dir = exists and fs.isdir(fs_path)
        handle = fs.open(fs_path, "rb") if exists and not is_dir else None
    except (
        Exception
    ) as e:  # object stores: credentials, permissions, endpoint (botocore errors are no OSError)
        raise OSError(f"cannot open input {path!r}: {type(e).__name__}: {e}") from e
    if not exists:
        raise FileNotFoundError(f"input file {path!r} does not exist")
    if is_dir:
        raise IsADirectoryError(f"input {path!r} is a directory, expected a file")
    return handle


def file_name(path: str) -> str:
    return PurePosixPath(urlparse(path).path or path).name


def stable_id(source_file: str, position: int | str) -> str:
    """An id for a record that has none: stable across reruns of the same file."""
    return hashlib.sha1(f"{source_file}\n{position}".encode()).hexdigest()


def crawl_id_from_name(path: str) -> str | None:
    m = CRAWL_ID_RE.search(file_name(path))
    return m.group(0) if m else None
