"""The loopback Hub server (tests/hub_server.py) against the real clients, no mocks.

In process: ``huggingface_hub.HfApi`` and ``hf_hub_download`` (regular and LFS uploads, listings,
downloads, range reads, errors). In one subprocess: ``datasets`` ``push_to_hub`` and
``load_dataset`` round trip, the path a window dataset takes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from huggingface_hub import HfApi, HfFileSystem, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

TOKEN = "hf_loopback_token"


@pytest.fixture
def model_folder(tmp_path):
    """A folder with a small text file and a >1 MB binary ``.safetensors`` file (an LFS file)."""
    folder = tmp_path / "upload"
    (folder / "weights").mkdir(parents=True)
    (folder / "notes.txt").write_text("spikes in seconds\n")
    blob = hashlib.sha256(b"seed").digest() * (1_200_000 // 32 + 1)   # 1.2 MB, deterministic
    (folder / "weights" / "model.safetensors").write_bytes(blob)
    return folder


def test_model_repo_roundtrip_through_huggingface_hub(loopback_hub, model_folder, tmp_path):
    hub = loopback_hub
    api = HfApi(endpoint=hub.url, token=TOKEN)
    assert api.whoami()["name"] == "user"

    url = api.create_repo("user/tiny")
    assert url.repo_id == "user/tiny" and url.startswith(hub.url)
    assert api.create_repo("user/tiny", exist_ok=True).repo_id == "user/tiny"
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_repo("user/tiny")
    assert excinfo.value.response.status_code == 409

    commit = api.upload_folder(folder_path=model_folder, repo_id="user/tiny", commit_message="add")
    weights = (model_folder / "weights" / "model.safetensors").read_bytes()
    assert commit.oid == api.model_info("user/tiny").sha

    # both upload paths ran: the text file inline in the commit, the weights through LFS
    assert ("POST", "/user/tiny.git/info/lfs/objects/batch") in hub.requests
    oid = hashlib.sha256(weights).hexdigest()
    assert ("PUT", f"/lfs-upload/model/user/tiny/{oid}") in hub.requests
    files = hub.files("user/tiny")
    assert sorted(files) == [".gitattributes", "notes.txt", "weights/model.safetensors"]
    assert files["notes.txt"] == b"spikes in seconds\n"
    assert files["weights/model.safetensors"] == weights

    assert sorted(api.list_repo_files("user/tiny")) == [
        ".gitattributes", "notes.txt", "weights/model.safetensors"]
    siblings = {s.rfilename: s for s in api.model_info("user/tiny", files_metadata=True).siblings}
    assert siblings["weights/model.safetensors"].lfs.sha256 == oid
    assert siblings["weights/model.safetensors"].size == len(weights)
    assert siblings["notes.txt"].lfs is None
    tree = {e.path: e for e in api.list_repo_tree("user/tiny", recursive=True, expand=True)}
    assert tree["weights"].last_commit.oid == commit.oid
    assert [p.path for p in api.get_paths_info("user/tiny", ["notes.txt", "missing.txt"])] == [
        "notes.txt"]

    cache = tmp_path / "cache"
    for name, expected in [("weights/model.safetensors", weights),
                           ("notes.txt", b"spikes in seconds\n")]:
        path = hf_hub_download("user/tiny", name, endpoint=hub.url, token=TOKEN, cache_dir=cache)
        with open(path, "rb") as f:
            assert f.read() == expected
    # pinned to a commit sha, and read by byte ranges through the hf:// file system
    first = hf_hub_download("user/tiny", "notes.txt", revision=commit.oid, endpoint=hub.url,
                            token=TOKEN, cache_dir=tmp_path / "cache2")
    assert os.path.basename(os.path.dirname(first)) == commit.oid
    fs = HfFileSystem(endpoint=hub.url, token=TOKEN, skip_instance_cache=True)
    with fs.open("user/tiny/weights/model.safetensors", "rb", block_size=4096) as f:
        f.seek(700_000)
        assert f.read(100) == weights[700_000:700_100]

    # an unchanged re-upload sends no LFS bytes again; the commit still lands
    n_puts = sum(1 for method, _ in hub.requests if method == "PUT")
    api.upload_folder(folder_path=model_folder, repo_id="user/tiny", commit_message="again")
    assert sum(1 for method, _ in hub.requests if method == "PUT") == n_puts

    # a failing commit raises and leaves the repo as it was
    head = api.model_info("user/tiny").sha
    hub.fail_next("commit", 500)
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.upload_file(path_or_fileobj=b"late", path_in_repo="late.txt", repo_id="user/tiny",
                        commit_message="fails")
    assert excinfo.value.response.status_code == 500
    assert "loopback failure" in str(excinfo.value)
    assert api.model_info("user/tiny").sha == head and "late.txt" not in hub.files("user/tiny")

    with pytest.raises(RepositoryNotFoundError):
        api.model_info("user/missing")
    with pytest.raises(RepositoryNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="user/missing",
                        commit_message="no repo")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("user/tiny", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("user/tiny", "absent.json", endpoint=hub.url, token=TOKEN, cache_dir=cache)
    assert hub.unhandled == []


DATASETS_ROUNDTRIP = r"""
import tempfile

import datasets
from datasets import Dataset, DatasetDict, Features, List, Value

features = Features({"unit_ids": List(Value("int64")), "dt": Value("float32"),
                     "trial": Value("string")})
pushed = DatasetDict({
    "train": Dataset.from_dict({"unit_ids": [[1, 2, 3], [4], []], "dt": [0.5, 1.25, -2.0],
                                "trial": ["a", "b", "c"]}, features=features),
    "test": Dataset.from_dict({"unit_ids": [[7, 8]], "dt": [3.5], "trial": ["z"]},
                              features=features),
})
pushed.push_to_hub("user/windows")
loaded = datasets.load_dataset("user/windows", cache_dir=tempfile.mkdtemp())
assert sorted(loaded) == ["test", "train"], sorted(loaded)
for split in pushed:
    assert loaded[split].features == pushed[split].features, (split, loaded[split].features)
    assert loaded[split].to_list() == pushed[split].to_list(), split
print("ROUNDTRIP OK", {split: loaded[split].num_rows for split in sorted(loaded)})
"""


def test_datasets_push_and_load_in_a_subprocess(loopback_hub):
    hub = loopback_hub
    result = subprocess.run([sys.executable, "-c", DATASETS_ROUNDTRIP],
                            env={**os.environ, **hub.env()}, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ROUNDTRIP OK {'test': 1, 'train': 3}" in result.stdout
    files = hub.files("user/windows", repo_type="dataset")
    assert {"README.md", "data/train-00000-of-00001.parquet",
            "data/test-00000-of-00001.parquet"} <= set(files)
    assert files["data/train-00000-of-00001.parquet"][:4] == b"PAR1"
    assert hub.unhandled == []


def test_a_stopped_hub_answers_no_kept_alive_connection(loopback_hub):
    """Break test: ``stop()`` closed only the listening socket, and a client whose connection was kept
    alive (``huggingface_hub``'s shared session keeps them) went on being answered by the stopped hub,
    so a test of "the server went away" pushed successfully. Every open connection is closed now: the
    next request fails as against a server that is down."""
    hub = loopback_hub
    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo("user/alive")
    assert api.model_info("user/alive").id == "user/alive"   # the connection stays open after this
    n = len(hub.requests)
    hub.stop()
    with pytest.raises(Exception) as excinfo:
        api.model_info("user/alive")
    err = excinfo.value
    assert not isinstance(err, HfHubHTTPError), err   # no HTTP answer at all: a transport error (refused, reset)
    assert isinstance(err, OSError) or type(err).__module__.split(".")[0] in ("httpx", "httpx2"), repr(err)
    assert len(hub.requests) == n
