"""Download one person's dataset zip: streamed, resumable, verified, extracted atomically.

Layout under ``root`` while working::

    root/.downloads/<person>.zip.part   # bytes so far; resumed with an HTTP Range request
    root/.downloads/<person>.url        # the URL the bytes came from (a new URL starts over)
    root/.downloads/<person>.zip        # whole and verified, waiting to be extracted
    root/.<person>.staging-XXXX/        # extraction area, on the same filesystem as the target

``root/<person>`` appears in one ``rename`` once the extracted folder is whole, with its
completion marker already inside, so no attempt can leave a partial or damaged target.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath

import requests
from tqdm import tqdm

logger = logging.getLogger(__name__)

DEFAULT_URL = (
    "https://github.com/facebookresearch/audio2photoreal/releases/download/v1.0/{person}.zip"
)
MARKER_NAME = ".a2p_download_complete"
_SCENE_AUDIO_GLOB = "scene*_audio.wav"
_PERSON_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RETRYABLE_4XX = {408, 429}
# What an archive may expand to. Upstream's per-person zips are about 1.1 GB of mostly
# incompressible wav; these limits refuse a zip bomb before any byte of it is written.
MAX_EXTRACTED_BYTES = 32 << 30
MAX_COMPRESSION_RATIO = 1000  # for members over 1 MiB
_RATIO_CHECK_BYTES = 1 << 20


class DownloadError(RuntimeError):
    """A download, verification or extraction failed; the message names the URL or file."""


class _RetryableError(Exception):
    """A transient failure (dropped connection, 5xx, short body) worth another attempt."""


def download_person(
    url: str,
    root: Path,
    person: str,
    *,
    sha256: str | None = None,
    retries: int = 5,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 30.0,
    chunk_bytes: int = 1 << 20,
    progress: bool = True,
    max_extracted_bytes: int = MAX_EXTRACTED_BYTES,
) -> Path:
    """Download and extract ``person``'s zip from ``url`` into ``root / person``; return that path.

    ``url`` may contain ``{person}``. ``retries`` is the total number of attempts allowed for the
    transfer; failed attempts wait ``backoff_seconds * 2**k`` before resuming. A folder that a
    previous call completed (it holds the marker) is returned without any network access.
    An archive whose members declare more than ``max_extracted_bytes`` in all, more than the
    free disk space, or a member over 1 MiB compressed more than ``MAX_COMPRESSION_RATIO``:1, is
    refused before extraction (its declared sizes bound what zipfile writes).
    """
    if not _PERSON_RE.match(person) or person in {".", ".."}:
        raise ValueError(f"person must be a plain folder name like 'PXB184', got {person!r}")
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}")
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    url = url.replace("{person}", person)
    root = Path(root)
    target = root / person
    if target.exists():
        return _existing_target(target, url, sha256)

    downloads = root / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    part = downloads / f"{person}.zip.part"
    zip_path = downloads / f"{person}.zip"
    source_file = downloads / f"{person}.url"
    _forget_other_source(source_file, url, part, zip_path)
    try:
        if zip_path.is_file():
            logger.info("Re-using the downloaded archive %s", zip_path)
            digest = _verified_sha256(zip_path, sha256, url)
        else:
            _fetch(
                url,
                part,
                retries=retries,
                backoff_seconds=backoff_seconds,
                timeout_seconds=timeout_seconds,
                chunk_bytes=chunk_bytes,
                progress=progress,
                label=person,
            )
            digest = _verified_sha256(part, sha256, url)
            os.replace(part, zip_path)
        size = zip_path.stat().st_size
        marker = {"person": person, "url": url, "sha256": digest, "bytes": size}
        _extract_into_place(zip_path, target, marker, max_extracted_bytes)
        zip_path.unlink()
    finally:
        # keep the bookkeeping only while there are bytes worth resuming or re-using
        if not part.exists() and not zip_path.exists():
            source_file.unlink(missing_ok=True)
            _remove_if_empty(downloads)
    logger.info("Dataset for %s is ready at %s", person, target)
    return target


def _existing_target(target: Path, url: str, sha256: str | None) -> Path:
    """Return a completed ``target`` untouched, or refuse to go near a folder we did not make."""
    marker_path = target / MARKER_NAME
    if not marker_path.is_file():
        raise DownloadError(
            f"{target} already exists but was not made by a completed download (no {MARKER_NAME}); "
            "it is left untouched. To use it as it is, set dataset.source=local; "
            "to download afresh, remove it first."
        )
    try:
        marker = json.loads(marker_path.read_text())
    except (OSError, ValueError) as exc:
        raise DownloadError(f"cannot read the completion marker {marker_path}: {exc}") from exc
    if sha256 is not None and marker.get("sha256", "").lower() != sha256.lower():
        raise DownloadError(
            f"{target} was downloaded from an archive with sha256 {marker.get('sha256')}, "
            f"but sha256 {sha256} was requested; it is left untouched. "
            "Remove it to download the requested archive."
        )
    if marker.get("url") != url:
        logger.info("%s was downloaded from %s (now asked for %s)", target, marker.get("url"), url)
    logger.info("Dataset already downloaded at %s; skipping the download", target)
    return target


def _forget_other_source(source_file: Path, url: str, part: Path, zip_path: Path) -> None:
    """Drop partial or unextracted bytes that came from a different URL; record the current one."""
    previous = source_file.read_text().strip() if source_file.is_file() else None
    if previous is not None and previous != url:
        logger.info("Discarding earlier download from %s (now downloading %s)", previous, url)
        part.unlink(missing_ok=True)
        zip_path.unlink(missing_ok=True)
    source_file.write_text(url)


def _fetch(
    url: str,
    part: Path,
    *,
    retries: int,
    backoff_seconds: float,
    timeout_seconds: float,
    chunk_bytes: int,
    progress: bool,
    label: str,
) -> None:
    """Bring ``part`` to the full size of the resource at ``url``, resuming after failures."""
    with requests.Session() as session:
        for attempt in range(1, retries + 1):
            try:
                _fetch_once(
                    session,
                    url,
                    part,
                    timeout_seconds=timeout_seconds,
                    chunk_bytes=chunk_bytes,
                    progress=progress,
                    label=label,
                )
                return
            except _RetryableError as exc:
                if attempt == retries:
                    raise DownloadError(
                        f"giving up on {url} after {retries} attempts: {exc}; "
                        f"{_size(part)} bytes are kept in {part} and the next call resumes there"
                    ) from None
                delay = backoff_seconds * 2 ** (attempt - 1)
                logger.warning(
                    "Attempt %d/%d for %s failed (%s); retrying in %.3g s",
                    attempt,
                    retries,
                    url,
                    exc,
                    delay,
                )
                time.sleep(delay)


def _fetch_once(
    session: requests.Session,
    url: str,
    part: Path,
    *,
    timeout_seconds: float,
    chunk_bytes: int,
    progress: bool,
    label: str,
) -> None:
    """One GET, appended to ``part`` when the server honours Range; _RetryableError if short."""
    have = _size(part)
    # identity: the byte counts must match Content-Length / Content-Range exactly
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        logger.info("Resuming %s at byte %d", url, have)
    try:
        response = session.get(
            url, headers=headers, stream=True, timeout=timeout_seconds, allow_redirects=True
        )
    except requests.exceptions.SSLError as exc:
        raise DownloadError(f"cannot download {url}: {exc}") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise _RetryableError(f"connection failed: {exc}") from None
    except requests.exceptions.RequestException as exc:
        raise DownloadError(f"cannot download {url}: {exc}") from None

    with response:
        status = response.status_code
        if status == 416 and have:
            total = _content_range_total(response.headers.get("Content-Range", ""))
            if total == have:
                logger.info("%s was already complete (%d bytes)", part, have)
                return
            part.unlink()
            raise _RetryableError(f"server rejected resuming at byte {have}; starting over")
        if status in _RETRYABLE_4XX or status >= 500:
            raise _RetryableError(f"HTTP {status} {response.reason}")
        if status >= 400:
            raise DownloadError(
                f"cannot download {url}: HTTP {status} {response.reason} (not retried; "
                "check the URL and the person id)"
            )
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink(missing_ok=True)
                raise _RetryableError(f"server resumed at byte {start}, not {have}; starting over")
            mode = "ab"
        elif status == 200:
            if have:
                logger.info("Server ignored the Range request; restarting %s from byte 0", url)
                have = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        else:
            raise DownloadError(
                f"cannot download {url}: unexpected HTTP {status} {response.reason}"
            )

        try:
            with (
                part.open(mode) as fh,
                tqdm(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=label,
                    disable=not progress,
                ) as bar,
            ):
                for chunk in response.iter_content(chunk_size=chunk_bytes):
                    fh.write(chunk)
                    bar.update(len(chunk))
        except (requests.exceptions.RequestException, ConnectionError) as exc:
            raise _RetryableError(f"connection dropped at byte {_size(part)}: {exc}") from None
        except OSError as exc:
            raise DownloadError(f"cannot write {part}: {exc}") from exc

    size = _size(part)
    if total is None:
        logger.info("Downloaded %d bytes from %s (no length announced)", size, url)
        return
    if size < total:
        raise _RetryableError(f"connection closed at byte {size} of {total}")
    if size > total:
        part.unlink()
        raise _RetryableError(f"received {size} bytes but {total} were announced; starting over")
    logger.info("Downloaded %d bytes from %s", size, url)


def _parse_content_range(value: str) -> tuple[int, int | None]:
    """Parse ``bytes START-END/TOTAL`` (TOTAL may be ``*``) into (START, TOTAL or None)."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
    if match is None:
        raise _RetryableError(f"206 response with an unreadable Content-Range {value!r}")
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)


def _content_range_total(value: str) -> int | None:
    """The total size in a 416 response's ``bytes */TOTAL`` header, if present."""
    match = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", value)
    return int(match.group(1)) if match else None


def _size(path: Path) -> int:
    """Size of ``path`` in bytes, 0 when it does not exist."""
    return path.stat().st_size if path.exists() else 0


def _verified_sha256(path: Path, expected: str | None, url: str) -> str:
    """Return the sha256 of ``path``; delete it and raise when it differs from ``expected``."""
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if expected is None:
        logger.info("sha256 of %s is %s (no checksum given to compare)", path.name, digest)
        return digest
    if digest != expected.strip().lower():
        path.unlink()
        raise DownloadError(
            f"checksum mismatch for {url}: expected sha256 {expected}, got {digest}; "
            "the download was deleted"
        )
    logger.info("sha256 of %s verified (%s)", path.name, digest)
    return digest


def _extract_into_place(
    zip_path: Path, target: Path, marker: dict, max_extracted_bytes: int
) -> None:
    """Extract ``zip_path`` in a staging folder beside ``target`` and rename it into place.

    Staging folders of this person left by a killed extraction are removed first: they are never
    read, and a whole person's worth of partial files would otherwise stay on the disk.
    """
    for stale in target.parent.glob(f".{target.name}.staging-*"):
        logger.info("Removing %s, left by an interrupted extraction", stale)
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        extracted = staging / "archive"
        extracted.mkdir()  # unlike mkdtemp's 0o700, this gets the usual umask-based mode
        try:
            _safe_extract(zip_path, extracted, max_extracted_bytes)
            scene_dir = _find_scene_dir(extracted, zip_path)
        except DownloadError as exc:
            # the archive itself is unusable: drop it so that the next call downloads it again
            zip_path.unlink(missing_ok=True)
            raise DownloadError(f"{exc}; the archive was deleted") from None
        (scene_dir / MARKER_NAME).write_text(json.dumps(marker, indent=2))
        try:
            os.rename(scene_dir, target)
        except OSError as exc:
            raise DownloadError(f"cannot move the extracted data into {target}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _safe_extract(zip_path: Path, dest: Path, max_extracted_bytes: int) -> None:
    """Check every member of ``zip_path`` (size, integrity, no escape from ``dest``), extract."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = archive.infolist()
            for info in members:
                _check_member(info, dest, zip_path)
            _check_expansion(members, dest, zip_path, max_extracted_bytes)
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"member {bad!r} fails its CRC check")
            archive.extractall(dest)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DownloadError(f"the archive {zip_path} is corrupt ({exc})") from None
    logger.info("Extracted %d members of %s", len(members), zip_path.name)


def _check_expansion(
    members: list[zipfile.ZipInfo], dest: Path, zip_path: Path, limit: int
) -> None:
    """Refuse an archive that would expand past ``limit``, the free disk, or a sane ratio."""
    declared = sum(info.file_size for info in members)
    problem = None
    if declared > limit:
        problem = f"its members declare {declared} bytes, over the {limit}-byte limit"
    elif declared > shutil.disk_usage(dest).free:
        problem = f"its members declare {declared} bytes, more than the free disk space"
    else:
        for info in members:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_CHECK_BYTES and ratio > MAX_COMPRESSION_RATIO:
                problem = (
                    f"member {info.filename!r} expands {ratio:.0f}:1, over the "
                    f"{MAX_COMPRESSION_RATIO}:1 limit (a zip bomb?)"
                )
                break
    if problem is not None:
        raise DownloadError(f"refusing to extract {zip_path}: {problem}")


def _check_member(info: zipfile.ZipInfo, dest: Path, zip_path: Path) -> None:
    """Reject members that are links or would land outside ``dest`` (zip-slip)."""
    name = info.filename
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    problem = None
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        problem = "has an absolute path"
    elif ".." in posix.parts or ".." in windows.parts:
        problem = "contains '..'"
    elif stat.S_ISLNK(info.external_attr >> 16):
        problem = "is a symbolic link"
    elif not (dest / name).resolve().is_relative_to(dest.resolve()):
        problem = "would be written outside the extraction folder"
    if problem is not None:
        raise DownloadError(f"refusing to extract {zip_path}: member {name!r} {problem}")


def _find_scene_dir(extracted: Path, zip_path: Path) -> Path:
    """The one folder holding ``scene*_audio.wav`` (``<person>/`` upstream, or the top level)."""
    folders = sorted(
        {p.parent for p in extracted.rglob(_SCENE_AUDIO_GLOB) if "__MACOSX" not in p.parts}
    )
    if not folders:
        raise DownloadError(f"the archive {zip_path} holds no {_SCENE_AUDIO_GLOB} files")
    if len(folders) > 1:
        found = ", ".join(str(f.relative_to(extracted)) for f in folders)
        raise DownloadError(f"the archive {zip_path} holds scenes in several folders: {found}")
    return folders[0]


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when nothing is left in it."""
    try:
        folder.rmdir()
    except OSError:
        pass
