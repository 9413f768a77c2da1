"""Tests for data.download against a local HTTP server that can drop, ignore Range and fail."""

from __future__ import annotations

import hashlib
import io
import json
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from audio2photoreal_pipelines.data.acquire import DatasetParams, check_person_id
from audio2photoreal_pipelines.data.download import (
    MARKER_NAME,
    DownloadError,
    download_person,
)

PERSON = "PXB184"
FAST = {"backoff_seconds": 0.001, "timeout_seconds": 2.0, "chunk_bytes": 1024, "progress": False}


@dataclass
class ServerState:
    """What the fake server serves and how it misbehaves; records every request it sees."""

    payload: bytes = b""
    cut_first: bool = False
    cut_always: bool = False
    ignore_range: bool = False
    status: int | None = None
    status_times: int | None = None
    overstate_first: int = 0
    throttle_seconds: float = 0.0  # pause after every 4 KiB sent
    requests: list[dict] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state: ServerState = self.server.state
        state.requests.append({"path": self.path, "range": self.headers.get("Range")})
        count = len(state.requests)
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if state.status is not None and (state.status_times is None or count <= state.status_times):
            self.send_error(state.status)
            return
        data, start = state.payload, 0
        requested = self.headers.get("Range")
        if requested and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        announced = len(body) + (state.overstate_first if count == 1 else 0)
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        if state.cut_always or (state.cut_first and count == 1):
            # announce the whole body, send about half, then hang up
            self.wfile.write(body[: _cut_point(body)])
            self.wfile.flush()
            self.close_connection = True
            return
        if state.throttle_seconds:
            for offset in range(0, len(body), 4096):
                self.wfile.write(body[offset : offset + 4096])
                self.wfile.flush()
                time.sleep(state.throttle_seconds)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Keep the test output quiet."""


def _cut_point(body: bytes) -> int:
    """Half the body, rounded down to whole client chunks.

    The client keeps only whole chunks it has read before the connection drops, so a cut on a
    chunk boundary makes the resume offset exact.
    """
    return len(body) // 2 // FAST["chunk_bytes"] * FAST["chunk_bytes"]


@pytest.fixture
def server(monkeypatch):
    """A threading HTTP server on 127.0.0.1 with a free port; yields (state, base_url)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState()
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield httpd.state, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _scene_files(n_scenes: int = 2, frames: int = 6) -> dict[str, bytes]:
    """Tiny fake scenes in the upstream file naming: name -> bytes."""
    rng = np.random.default_rng(0)
    files = {}
    for i in range(1, n_scenes + 1):
        arrays = {
            "body_pose": rng.standard_normal((frames, 104)),
            "face_expression": rng.standard_normal((frames, 256)),
            "missing_face_frames": np.array([1]),
        }
        for kind, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            files[f"scene{i:02d}_{kind}.npy"] = buffer.getvalue()
        files[f"scene{i:02d}_audio.wav"] = rng.bytes(2 * 2 * 1600 * frames)
    return files


def _zip(
    members: dict[str | zipfile.ZipInfo, bytes],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    comment: bytes = b"",
) -> bytes:
    """Build a zip archive in memory from name (or ZipInfo) -> bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.comment = comment
    return buffer.getvalue()


def _upstream_zip(files: dict[str, bytes]) -> bytes:
    """The upstream layout: every file under ``<person>/``."""
    return _zip({f"{PERSON}/{name}": data for name, data in files.items()})


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _assert_clean_root(root: Path) -> None:
    """No target, no staging folder, no download left behind: the root is as before the call."""
    assert not (root / PERSON).exists()
    assert not root.exists() or list(root.iterdir()) == []


def test_happy_path_extracts_scenes_and_writes_marker(server, tmp_path):
    state, base = server
    files = _scene_files()
    state.payload = _upstream_zip(files)
    url = base + "/{person}.zip"

    target = download_person(url, tmp_path, PERSON, **FAST)

    assert target == tmp_path / PERSON
    extracted = _tree(target)
    marker = json.loads(extracted.pop(MARKER_NAME))
    assert extracted == files
    assert marker["sha256"] == hashlib.sha256(state.payload).hexdigest()
    assert marker["url"] == f"{base}/{PERSON}.zip"
    assert state.requests[0]["path"] == f"/{PERSON}.zip"
    assert sorted(p.name for p in tmp_path.iterdir()) == [PERSON]


def test_completed_download_is_not_fetched_again(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())
    download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    again = download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    assert again == tmp_path / PERSON
    assert len(state.requests) == 1


def test_dropped_connection_resumes_with_range(server, tmp_path, caplog):
    state, base = server
    files = _scene_files()
    state.payload = _upstream_zip(files)
    state.cut_first = True
    caplog.set_level("INFO", logger="audio2photoreal_pipelines.data.download")

    target = download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    half = _cut_point(state.payload)
    assert 0 < half < len(state.payload)
    assert [r["range"] for r in state.requests] == [None, f"bytes={half}-"]
    marker = json.loads((target / MARKER_NAME).read_text())
    assert marker["sha256"] == hashlib.sha256(state.payload).hexdigest()
    assert {k: v for k, v in _tree(target).items() if k != MARKER_NAME} == files
    assert f"at byte {half}" in caplog.text


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    state, base = server
    files = _scene_files()
    state.payload = _upstream_zip(files)
    state.cut_first = True
    state.ignore_range = True

    target = download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    assert len(state.requests) == 2 and state.requests[1]["range"] is not None
    marker = json.loads((target / MARKER_NAME).read_text())
    assert marker["sha256"] == hashlib.sha256(state.payload).hexdigest()
    assert {k: v for k, v in _tree(target).items() if k != MARKER_NAME} == files


def test_partial_download_is_resumed_by_the_next_call(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())
    state.cut_first = True
    with pytest.raises(DownloadError, match="1 attempts"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, retries=1, **FAST)
    assert not (tmp_path / PERSON).exists()

    download_person(base + "/{person}.zip", tmp_path, PERSON, retries=1, **FAST)

    assert state.requests[1]["range"] == f"bytes={_cut_point(state.payload)}-"
    assert (tmp_path / PERSON / MARKER_NAME).is_file()


def test_complete_part_is_accepted_on_range_not_satisfiable(server, tmp_path):
    state, base = server
    files = _scene_files()
    members = {f"{PERSON}/{k}": v for k, v in files.items()}
    # pad with a zip comment to whole client chunks, so the client keeps every byte it was sent
    pad = -len(_zip(members)) % FAST["chunk_bytes"]
    state.payload = _zip(members, comment=b"x" * pad)
    state.overstate_first = 100  # the first response announces more bytes than it sends

    target = download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    assert [r["range"] for r in state.requests] == [None, f"bytes={len(state.payload)}-"]
    assert {k: v for k, v in _tree(target).items() if k != MARKER_NAME} == files


def test_redirects_are_followed(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())

    target = download_person(base + "/redirect/{person}.zip", tmp_path, PERSON, **FAST)

    assert [r["path"] for r in state.requests] == [f"/redirect/{PERSON}.zip", f"/{PERSON}.zip"]
    assert (target / "scene01_audio.wav").is_file()


def test_flat_archive_is_accepted(server, tmp_path):
    state, base = server
    files = _scene_files()
    state.payload = _zip(files)

    target = download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    assert {k: v for k, v in _tree(target).items() if k != MARKER_NAME} == files


def test_server_errors_are_retried(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())
    state.status, state.status_times = 503, 2

    download_person(base + "/{person}.zip", tmp_path, PERSON, retries=3, **FAST)

    assert len(state.requests) == 3
    assert (tmp_path / PERSON / MARKER_NAME).is_file()


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())
    got = hashlib.sha256(state.payload).hexdigest()

    with pytest.raises(DownloadError, match=f"expected sha256 {'0' * 64}, got {got}"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, sha256="0" * 64, **FAST)

    _assert_clean_root(tmp_path)


def test_existing_copy_without_marker_is_left_untouched(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())
    own = tmp_path / PERSON
    own.mkdir()
    (own / "scene01_audio.wav").write_bytes(b"my own copy")
    before = _tree(own)

    with pytest.raises(DownloadError, match="dataset.source=local"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    assert _tree(own) == before
    assert state.requests == []


def test_existing_download_survives_a_request_with_another_checksum(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())
    target = download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)
    before = _tree(target)

    with pytest.raises(DownloadError, match="left untouched"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, sha256="f" * 64, **FAST)

    assert _tree(target) == before
    assert len(state.requests) == 1


def test_corrupt_archive_is_rejected_and_deleted(server, tmp_path):
    state, base = server
    state.payload = np.random.default_rng(1).bytes(5000)

    with pytest.raises(DownloadError, match="corrupt"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    _assert_clean_root(tmp_path)


def test_crc_error_is_rejected(server, tmp_path):
    state, base = server
    files = _scene_files()
    first = f"{PERSON}/scene01_body_pose.npy"
    members = {f"{PERSON}/{k}": v for k, v in files.items()}
    archive = bytearray(_zip(members, compression=zipfile.ZIP_STORED))
    # flip one stored byte of the first member (after its 30-byte local header and its name)
    archive[30 + len(first) + 10] ^= 0xFF
    state.payload = bytes(archive)

    with pytest.raises(DownloadError, match="corrupt.*fails its CRC check"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    _assert_clean_root(tmp_path)


def _symlink_member() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(f"{PERSON}/link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../../../evil.txt", "'..'"),
        ("ABSOLUTE", "absolute path"),
        ("SYMLINK", "symbolic link"),
    ],
)
def test_unsafe_members_are_refused(server, tmp_path, member, problem):
    state, base = server
    root = tmp_path / "root"
    evil = tmp_path / "evil.txt"
    name = {"ABSOLUTE": str(evil), "SYMLINK": _symlink_member()}.get(member, member)
    members = {f"{PERSON}/{k}": v for k, v in _scene_files().items()}
    members[name] = b"/etc/passwd" if member == "SYMLINK" else b"pwned"
    state.payload = _zip(members)

    with pytest.raises(DownloadError, match=re.escape(problem)) as raised:
        download_person(base + "/{person}.zip", root, PERSON, **FAST)

    shown = name.filename if isinstance(name, zipfile.ZipInfo) else name
    assert repr(shown) in str(raised.value)
    assert not evil.exists()
    assert [p for p in tmp_path.rglob("*") if p.name in {"evil.txt", "link"}] == []
    _assert_clean_root(root)


def test_archive_without_scenes_is_rejected(server, tmp_path):
    state, base = server
    state.payload = _zip({f"{PERSON}/README.txt": b"nothing here"})

    with pytest.raises(DownloadError, match=r"no scene\*_audio\.wav"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    _assert_clean_root(tmp_path)


def test_not_found_fails_fast(server, tmp_path):
    state, base = server
    state.status = 404

    with pytest.raises(DownloadError, match="HTTP 404"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, retries=5, **FAST)

    assert len(state.requests) == 1
    _assert_clean_root(tmp_path)


def test_gives_up_after_the_given_number_of_attempts(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())
    state.cut_always = True

    with pytest.raises(DownloadError, match="after 3 attempts"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, retries=3, **FAST)

    assert len(state.requests) == 3
    assert not (tmp_path / PERSON).exists()


def test_person_must_be_a_plain_folder_name(tmp_path):
    with pytest.raises(ValueError, match="plain folder name"):
        download_person("http://127.0.0.1:9/{person}.zip", tmp_path, "../x", **FAST)


@pytest.mark.parametrize("person", ["../x", "/etc", "a b", "", ".hidden", "x" * 65, 104])
def test_person_ids_that_are_not_plain_names_are_refused(person):
    with pytest.raises(ValueError, match="dataset.person must be letters"):
        check_person_id(person)
    with pytest.raises(ValueError, match="dataset.person must be letters"):
        DatasetParams(person=person)
    assert check_person_id("RLW104") == "RLW104" and check_person_id("SYN_002-b") == "SYN_002-b"


def test_a_zip_bomb_is_refused_before_anything_is_written(server, tmp_path):
    state, base = server
    members = {f"{PERSON}/{k}": v for k, v in _scene_files().items()}
    members[f"{PERSON}/scene01_body_pose.npy"] = bytes(64 << 20)  # 64 MiB of zeros
    state.payload = _zip(members, compression=zipfile.ZIP_BZIP2)
    assert len(state.payload) < 1 << 20  # a small download that would expand 64 MiB

    with pytest.raises(DownloadError, match=r"expands \d+:1, over the 1000:1 limit"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    _assert_clean_root(tmp_path)


def test_an_archive_declaring_more_than_the_limit_is_refused(server, tmp_path):
    state, base = server
    state.payload = _upstream_zip(_scene_files())

    with pytest.raises(DownloadError, match="over the 1000-byte limit"):
        download_person(base + "/{person}.zip", tmp_path, PERSON, max_extracted_bytes=1000, **FAST)

    _assert_clean_root(tmp_path)
    # Within the limit, the same archive extracts.
    assert (
        download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST) / MARKER_NAME
    ).exists()


def _download_in_subprocess(url: str, root: Path, patch: str = "") -> subprocess.Popen:
    """``download_person`` in its own process (``patch``: Python run first), to be killed."""
    code = (
        f"{patch}\n"
        "from audio2photoreal_pipelines.data.download import download_person\n"
        f"download_person({url!r}, {str(root)!r}, {PERSON!r}, backoff_seconds=0.001, "
        "timeout_seconds=5.0, chunk_bytes=1024, progress=False)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def _wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the download to get there"
        time.sleep(0.02)


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_a_download_killed_mid_transfer_resumes_and_verifies(server, tmp_path):
    state, base = server
    files = _scene_files(n_scenes=3, frames=20)
    state.payload = _upstream_zip(files)
    state.throttle_seconds = 0.01
    part = tmp_path / ".downloads" / f"{PERSON}.zip.part"
    process = _download_in_subprocess(base + "/{person}.zip", tmp_path)
    try:
        _wait_for(lambda: part.exists() and part.stat().st_size > 16 * 1024)
    finally:
        _kill(process)
    kept = part.stat().st_size
    assert 0 < kept < len(state.payload) and not (tmp_path / PERSON).exists()

    state.throttle_seconds = 0.0
    target = download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    assert {k: v for k, v in _tree(target).items() if k != MARKER_NAME} == files
    resumed_from = int(re.fullmatch(r"bytes=(\d+)-", state.requests[-1]["range"]).group(1))
    assert 0 < resumed_from <= kept
    assert (
        json.loads((target / MARKER_NAME).read_text())["sha256"]
        == hashlib.sha256(state.payload).hexdigest()
    )


def test_a_download_killed_mid_extraction_leaves_no_target_and_the_rerun_cleans_up(
    server, tmp_path
):
    state, base = server
    files = _scene_files()
    state.payload = _upstream_zip(files)
    # Extraction fills the staging folder, then the process is killed before the rename.
    stall = (
        "import time, zipfile\n"
        "_extract = zipfile.ZipFile.extractall\n"
        "def extractall(self, *a, **k):\n"
        "    _extract(self, *a, **k)\n"
        "    time.sleep(120)\n"
        "zipfile.ZipFile.extractall = extractall\n"
    )
    process = _download_in_subprocess(base + "/{person}.zip", tmp_path, stall)
    try:
        _wait_for(lambda: any(tmp_path.glob(f".{PERSON}.staging-*/archive/{PERSON}/scene02_*")))
    finally:
        _kill(process)
    assert not (tmp_path / PERSON).exists(), "a half-extracted person is never in place"
    assert list(tmp_path.glob(f".{PERSON}.staging-*"))

    requests_before = len(state.requests)
    target = download_person(base + "/{person}.zip", tmp_path, PERSON, **FAST)

    assert {k: v for k, v in _tree(target).items() if k != MARKER_NAME} == files
    assert len(state.requests) == requests_before, "the verified archive is reused, not fetched"
    assert not list(tmp_path.glob(f".{PERSON}.staging-*")), "the killed run's staging is removed"
