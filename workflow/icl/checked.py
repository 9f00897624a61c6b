"""Checked files: torch.save content that proves on loading that it is the content that was written.

A checked file is one header line, `icl-checked v1 sha256=<hex> bytes=<n>`, followed by the n bytes
of `torch.save`. The header and the payload are written together to one temporary file and renamed
(icl.files.atomic_path), so no reader sees one without the other. Loading recomputes the digest, so a
file truncated or altered on disk (with its mtime kept, where Snakemake would not notice) fails with
an error that names it, rather than loading changed numbers. The same content gives the same bytes,
so a rebuilt file is identical to the one it replaces.
"""

import hashlib
import io
import re

import torch

from .files import atomic_path

MAGIC = b"icl-checked v1"
_HEADER = re.compile(re.escape(MAGIC) + rb" sha256=([0-9a-f]{64}) bytes=(\d+)\n")
_LONGEST_HEADER = 200  # a valid header is about 100 bytes; the cap stops the search for its end in a foreign file


class DamagedFileError(RuntimeError):
    """A checked file is truncated, altered or was not written by this pipeline."""


def save(obj, path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getbuffer()
    header = b"%s sha256=%s bytes=%d\n" % (MAGIC, hashlib.sha256(payload).hexdigest().encode(), len(payload))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(header)
        handle.write(payload)


def load(path, remedy: str, weights_only: bool = True):
    """The object saved at `path`, once its checksum matches; `remedy` is the sentence that says how to rebuild the file if not."""
    with open(path, "rb", buffering=0) as handle:  # unbuffered: readall() then reads the payload in one piece
        header = handle.readline(_LONGEST_HEADER)
        payload = handle.readall()
    problem = _problem(header, payload)
    if problem:
        raise DamagedFileError(f"{path}: {problem}. {remedy}")
    return torch.load(io.BytesIO(payload), weights_only=weights_only)


def _problem(header: bytes, payload: bytes) -> str | None:
    """What is wrong with a checked file's header line and payload, or None when they are intact."""
    if not header:
        return "truncated (empty)"
    if not header.startswith(MAGIC[: len(header)]):
        return "not a file of this pipeline (no checked-file header: other code wrote it, or it predates checksums)"
    if not header.endswith(b"\n") and not payload:
        return "truncated (it ends inside its header)"
    match = _HEADER.fullmatch(header)
    if not match:
        return "damaged header"
    digest, size = match[1].decode(), int(match[2])
    if len(payload) < size:
        return f"truncated (it holds {len(payload)} of the {size} bytes written)"
    if len(payload) > size:
        return f"altered ({len(payload) - size} bytes more than the {size} written)"
    actual = hashlib.sha256(payload).hexdigest()
    if actual != digest:
        return f"checksum mismatch (its content hashes to sha256 {actual[:16]}..., written as {digest[:16]}...)"
    return None
