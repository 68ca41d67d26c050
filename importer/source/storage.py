"""Object storage inputs: ``s3://bucket/prefix/2026-*.parquet`` through pyarrow's filesystems.

Remote files are streamed exactly like local ones; a ``SourceFile`` of a remote
file carries its filesystem and its path inside it. Its identity for the
manifest is the URI, size and modification time (pyarrow does not expose the
ETag). Credentials and endpoint come from the usual AWS settings (environment
variables, config files, instance roles); for an S3-compatible server add
``?endpoint_override=host:port&scheme=http`` to the URI or set ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import fnmatch
import glob
from typing import Any

from importer.errors import InputError

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "hdfs://")


def is_remote(spec: str) -> bool:
    return spec.lower().startswith(REMOTE_SCHEMES)


def resolve_remote(spec: str) -> list[tuple[str, Any, str, int, int]]:
    """Expand a remote file, folder or glob: (uri, filesystem, path in it, size, mtime_ns) each."""
    import pyarrow.fs as pafs

    base, _, query = spec.partition("?")
    scheme, _, rest = base.partition("://")
    magic = glob.has_magic(rest)
    prefix = rest
    if magic:
        cut = min(i for i, ch in enumerate(rest) if ch in "*?[")
        prefix = rest[:cut].rsplit("/", 1)[0]
    uri = f"{scheme}://{prefix}" + (f"?{query}" if query else "")
    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.File and not magic:
            infos = [info]
        elif info.type == pafs.FileType.Directory or magic:
            infos = [
                i for i in fs.get_file_info(pafs.FileSelector(root, recursive=True)) if i.type == pafs.FileType.File
            ]
        else:
            raise InputError(f"{spec}: no such object or prefix")
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises OSError / ArrowException subclasses with the service's text
        raise InputError(
            f"{spec}: cannot list it ({str(exc).splitlines()[0][:200]})",
            hint="check the bucket, the credentials (AWS_* variables) and, for S3-compatible servers, "
            "?endpoint_override=host:port&scheme=http",
        ) from None
    pattern = rest.split("?")[0]
    out = []
    for item in sorted(infos, key=lambda i: i.path):
        if magic and not _glob_match(item.path, pattern):
            continue
        if item.base_name.startswith("."):
            continue
        mtime_ns = int(item.mtime.timestamp() * 1e9) if item.mtime is not None else 0
        out.append((f"{scheme}://{item.path}", fs, item.path, int(item.size or 0), mtime_ns))
    if not out:
        raise InputError(f"{spec}: matches no object")
    return out


def _glob_match(path: str, pattern: str) -> bool:
    """Like a local glob: '*' stays within one '/'-separated part ('**' spans parts)."""
    if "**" in pattern:
        return fnmatch.fnmatchcase(path, pattern.replace("**", "*"))
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, wanted, strict=True))


def open_stream(source: Any, *, compressed: bool = False) -> Any:
    """A sequential binary stream of a remote source (decompressed when asked)."""
    return source.fs.open_input_stream(source.fs_path, compression="gzip" if compressed else None)


def open_random(source: Any) -> Any:
    """A seekable file of a remote source (Parquet needs its footer)."""
    return source.fs.open_input_file(source.fs_path)
