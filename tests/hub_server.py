"""A loopback Hugging Face Hub: an in-memory HTTP server that speaks the part of the Hub API used by
``huggingface_hub`` 2.4, ``datasets`` 5.2 and ``transformers`` 5.24, so that tests run the real
client code (hashing, preupload, LFS upload, commit, HEAD + GET downloads, ``hf://`` file system)
against 127.0.0.1 instead of huggingface.co.

Use::

    with LoopbackHub() as hub:                       # or the ``loopback_hub`` pytest fixture
        api = HfApi(endpoint=hub.url, token="hf_loopback_token")
        api.create_repo("user/m")
        ...
        subprocess.run([...], env={**os.environ, **hub.env()})   # datasets / transformers

``HF_ENDPOINT`` is read once, when ``huggingface_hub`` is imported: in the test process pass
``endpoint=hub.url`` (``HfApi``, ``hf_hub_download``); libraries that read ``HF_ENDPOINT``
themselves (``datasets``, ``transformers``) belong in a subprocess started with ``hub.env()``.

Endpoints (``{type}`` is ``models``, ``datasets`` or ``spaces``; ``{prefix}`` is empty for models,
``datasets/`` or ``spaces/`` otherwise; ``fail_next`` route names in brackets):

- ``GET /api/whoami-v2`` [whoami]: the user ``LoopbackHub.username`` (401 without a token).
- ``GET /api/agent-harnesses`` [agent_harnesses]: an empty registry (no AI agent harness known).
  ``huggingface_hub`` 2.x fetches it once per process, the first time it builds a user agent, from
  ``{ENDPOINT}``: here when that first request of a test process goes to this hub (a push through
  ``cli.main`` in process).
- ``POST /api/repos/create`` [create]: a new repo with an initial commit holding ``.gitattributes``
  (as the Hub does); 409 when it exists (``exist_ok=True`` relies on that).
  ``DELETE /api/repos/delete`` [delete].
- ``GET /api/{type}/{id}`` and ``/api/{type}/{id}/revision/{rev}`` [info]: ``sha``, ``siblings``
  (with ``size``/``blobId``/``lfs`` when ``blobs=true``), ``cardData`` from README.md's YAML,
  dates, ``private``. ``expand`` is accepted and ignored (all fields are always returned).
- ``GET /api/{type}/{id}/refs`` [refs], ``GET /api/{type}/{id}/commits/{rev}`` [commits],
  ``POST|DELETE /api/{type}/{id}/branch/{name}`` [branch] (409 when it exists).
- ``POST /api/{type}/{id}/preupload/{rev}`` [preupload]: ``uploadMode`` is ``lfs`` for paths
  matching a ``filter=lfs`` pattern of the revision's ``.gitattributes`` (``*.safetensors``,
  ``*.parquet``, ``*.bin``, ...), for files of 10 MiB or more and for samples holding a NUL
  byte; ``regular`` otherwise. ``shouldIgnore`` follows the ``gitIgnore`` patterns sent;
  ``oid`` (git sha1, or sha256 for LFS) of the file already at that path, so unchanged files
  are skipped by the client.
- ``POST /api/validate-yaml`` [validate_yaml]: 400 when README.md's front matter is not a YAML
  mapping, or when ``LoopbackHub.known_licenses`` is a set and the ``license`` field is not in
  it (the Hub checks the id against its list); else no errors.
- ``POST /api/{type}/{id}/commit/{branch}`` [commit]: NDJSON ``header`` (``parentCommit``
  checked: 412 when it is not the branch head), ``file`` (base64), ``lfsFile`` (the object must
  have been uploaded to this repo), ``deletedFile``, ``deletedFolder``; each commit gets a new
  sha, and every commit's snapshot is kept, so a commit sha works as a revision.
- ``POST /{prefix}{id}.git/info/lfs/objects/batch`` [lfs_batch]: ``transfer: basic``; an
  ``upload`` action (href back to this server) and a ``verify`` action, or no action when the
  object is already stored. ``PUT /lfs-upload/...`` [lfs_upload] checks the body's sha256 and
  size against the oid (400 otherwise); ``POST /lfs-verify/...`` [lfs_verify].
- ``GET /api/{type}/{id}/tree/{rev}[/{path}]`` [tree] (``recursive``, ``expand`` adds
  ``lastCommit``) and ``POST /api/{type}/{id}/paths-info/{rev}`` [paths_info] (form or JSON).
- ``HEAD|GET /{prefix}{id}/resolve/{rev}/{path}`` [resolve]: served directly (no CDN redirect)
  with ``X-Repo-Commit``, ``ETag`` (git oid; for LFS the pointer's), ``X-Linked-Etag`` /
  ``X-Linked-Size`` for LFS files, ``Content-Length``, ``Accept-Ranges``; single ``Range``
  requests answer 206 (or 416).
- ``GET /api/datasets/{id}/parquet...`` [parquet]: 404, no Parquet conversion exists (nor a
  ``refs/convert/parquet`` revision: RevisionNotFound).

Errors carry the headers the client maps to its exceptions: ``X-Error-Code: RepoNotFound``
(``RepositoryNotFoundError``), ``RevisionNotFound``, ``EntryNotFound`` (with ``X-Repo-Commit``),
and a JSON ``{"error": ...}`` body. Any other path answers 404 and is listed in ``unhandled``.

What it does NOT check or implement:

- auth: any token is accepted; whoami and the write routes (create, delete, branch, preupload,
  commit, LFS batch) answer 401 when no ``Authorization: Bearer`` header is sent; no private-repo access
  control, no gated repos, no rate limits, no write permissions; any namespace is accepted;
- Xet storage: not implemented, and ``huggingface_hub`` picks Xet whenever ``hf_xet`` is
  importable (it does not ask the server), so clients need ``HF_HUB_DISABLE_XET=1``
  (``env()`` sets it; in process, set ``huggingface_hub.constants.HF_HUB_DISABLE_XET = True``,
  as the ``loopback_hub`` fixture does);
- no pagination (tree and commit listings are one page), no pull requests (``create_pr`` is
  400), no tags, no multipart LFS transfer, no LFS download API; LFS objects are stored per
  repo, so copying an LFS file from another repo fails (400); no Spaces runtime, no dataset viewer (``datasets`` asks
  ``datasets-server.127.0.0.1``, which does not resolve, and falls back), no safetensors
  metadata, no discussions; the README YAML is not validated against the Hub's schema (only
  the licence id, when ``known_licenses`` is set);
- state lives in memory and is lost when the server stops.

``interrupt_next(route)`` presses Ctrl-C in the test's process (``SIGINT`` to its main thread) at
the next request of ``route``, which is then not carried out (499).

Note: ``huggingface_hub`` retries 408/429/5xx on the routes it calls through ``http_backoff``
(preupload, lfs_batch, lfs_upload, lfs_verify, tree, and the ranged GETs of ``HfFileSystem``),
after sleeping 1, 2, 4, ... s. A single ``fail_next(route, 500)`` on those is absorbed by one
retry; use a 4xx status (or ``times=``) to make the client raise. whoami, create, info,
paths_info and commit are not retried; the resolve HEAD is not retried (``hf_hub_download``
then falls back to its cache, or raises ``LocalEntryNotFoundError``), and the download GET is
retried on 408/429 only.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["ROUTES", "LoopbackHub"]

#: Route names accepted by :meth:`LoopbackHub.fail_next`.
ROUTES = ("whoami", "create", "delete", "info", "refs", "commits", "branch", "preupload",
          "validate_yaml", "commit", "lfs_batch", "lfs_upload", "lfs_verify", "tree", "paths_info",
          "resolve", "parquet")

_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
#: Regular files of this size or more go to LFS (the Hub's threshold).
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
#: The ``.gitattributes`` of a new repo: the Hub's usual LFS patterns, plus ``*.nwb``.
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5",
                    "*.joblib", "*.lz4", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz",
                    "*.nwb", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
                    "*.pth", "*.rar", "*.safetensors", "*.tar", "*.tflite", "*.tgz", "*.wasm",
                    "*.xz", "*.zip", "*.zst", "*tfevents*"))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _truthy(values) -> bool:
    if not values:
        return False
    return str(values[-1]).lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class _File:
    """One file of a snapshot: its bytes, and whether it is stored as an LFS object."""

    data: bytes
    lfs: bool
    sha256: str
    git_oid: str          # git blob id: of the content, or of the LFS pointer
    pointer_size: int

    @classmethod
    def make(cls, data: bytes, lfs: bool) -> _File:
        sha = hashlib.sha256(data).hexdigest()
        if lfs:
            pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\n"
                       f"size {len(data)}\n").encode()
            return cls(data, True, sha, _git_oid(pointer), len(pointer))
        return cls(data, False, sha, _git_oid(data), 0)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class _Commit:
    sha: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict = field(default_factory=dict)       # sha -> _Commit
    branches: dict = field(default_factory=dict)      # name -> sha
    lfs_objects: dict = field(default_factory=dict)   # sha256 -> bytes

    def head(self, branch: str = "main") -> _Commit:
        return self.commits[self.branches[branch]]


class _HubError(Exception):
    """An HTTP error answer: status, message, and the ``X-Error-Code`` the client maps."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})   # more fields of the JSON body


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)


def _json(obj, status: int = 200, content_type: str = "application/json") -> _Response:
    return _Response(status, json.dumps(obj).encode(), {"Content-Type": content_type})


#: Routes that answer 401 without a bearer token, as the Hub does for writes.
WRITE_ROUTES = frozenset({"create", "delete", "branch", "preupload", "commit", "lfs_batch"})


class LoopbackHub:
    """An in-memory Hub on ``http://127.0.0.1:<free port>``; see the module docstring.

    Attributes:
        url: ``"http://127.0.0.1:<port>"`` once started.
        requests: ``(method, path)`` of every request served, the path as sent (percent-encoded,
            without the query string).
        unhandled: ``(method, path)`` of requests no route matched (answered 404).
        username: the whoami user, and the namespace of repos created without one.
        known_licenses: ``None`` (licence ids not checked) or the set of ids that
            ``validate-yaml`` accepts, to stand for the Hub's licence list in a test.
        validated: ``(repoType, content)`` of every card sent to ``validate-yaml``, in order (a
            test reads from it which cards a push had made before it was refused).
    """

    def __init__(self, username: str = "user"):
        self.username = username
        self.known_licenses: set | None = None
        self.validated: list = []
        self.url = ""
        self.requests: list = []
        self.unhandled: list = []
        self._repos: dict = {}
        self._failures: dict = {}
        self._lock = threading.RLock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdirs: list = []
        self._connections: set = set()   # open client sockets, closed by stop()

    # ------------------------------------------------------------------ public API
    def start(self) -> LoopbackHub:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.block_on_close = False     # keep-alive client connections must not block stop()
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering: the listening socket and every open client connection are closed, so a
        client that keeps its connection alive (``huggingface_hub``'s session does) sees the hub go
        away at its next request, as with a real server going down. Before, only the listening socket
        closed, and a kept-alive connection went on being answered by the stopped hub."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for path in self._tmpdirs:
            shutil.rmtree(path, ignore_errors=True)
        self._tmpdirs.clear()

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self) -> dict:
        """Environment for a subprocess using this hub (merge into ``os.environ``).

        ``HF_HOME`` is a fresh temporary folder at every call (removed by :meth:`stop`); the hub
        and datasets caches are pinned under it and offline mode is switched off, so that
        variables inherited from the caller's shell cannot point the subprocess elsewhere.
        """
        if not self.url:
            raise RuntimeError("LoopbackHub.env() needs a started hub: call start() first")
        home = tempfile.mkdtemp(prefix="loopback-hf-home-")
        self._tmpdirs.append(home)
        return {
            "HF_ENDPOINT": self.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": "hf_loopback_token",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HOME": home,
            "HF_HUB_CACHE": f"{home}/hub",
            "HF_DATASETS_CACHE": f"{home}/datasets",
            "HF_HUB_OFFLINE": "0",
            "HF_DATASETS_OFFLINE": "0",
        }

    def fail_next(self, route: str, status: int = 500, message: str = "loopback failure", *,
                  times: int = 1, after: int = 0) -> None:
        """Make the next ``times`` requests of ``route`` answer ``status`` with ``{"error": message}``,
        after letting ``after`` requests of that route through (e.g. ``after=1``: the second commit).

        ``route`` is one of :data:`ROUTES`. Raises ``ValueError`` for an unknown route.
        """
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)}")
        with self._lock:
            self._failures.setdefault(route, []).extend([None] * int(after) + [(int(status), message)] * int(times))

    def interrupt_next(self, route: str, *, after: int = 0) -> None:
        """Press Ctrl-C in this process at the next request of ``route`` (after letting ``after``
        through, as :meth:`fail_next`): ``SIGINT`` goes to the main thread (a client of this process
        waiting for the answer gets ``KeyboardInterrupt``) and the request is not carried out (it
        answers 499, as a request whose client went away).

        ``route`` is one of :data:`ROUTES`. Raises ``ValueError`` for an unknown route.
        """
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)}")
        with self._lock:
            self._failures.setdefault(route, []).extend([None] * int(after) + ["interrupt"])

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict:
        """``{path: bytes}`` of a repo at a revision (branch or commit sha).

        Raises ``KeyError`` when the repo or the revision does not exist.
        """
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                raise KeyError(f"no {repo_type} repo {repo_id!r} on the loopback hub")
            commit = self._resolve(repo, revision)
            if commit is None:
                raise KeyError(f"no revision {revision!r} in {repo_type} repo {repo_id!r}")
            return {path: f.data for path, f in commit.files.items()}

    # ------------------------------------------------------------------ state helpers
    def _take_failure(self, route: str) -> tuple | None:
        with self._lock:
            queue = self._failures.get(route)
            return queue.pop(0) if queue else None

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _HubError(404, f"Repository Not Found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    @staticmethod
    def _resolve(repo: _Repo, revision: str | None) -> _Commit | None:
        rev = revision or "main"
        rev = rev.removeprefix("refs/heads/")
        if rev in repo.branches:
            return repo.commits[repo.branches[rev]]
        if re.fullmatch(r"[0-9a-f]{7,40}", rev):
            matches = [sha for sha in repo.commits if sha.startswith(rev)]
            if len(matches) == 1:
                return repo.commits[matches[0]]
        return None

    def _commit_of(self, repo: _Repo, revision: str | None) -> _Commit:
        commit = self._resolve(repo, revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _new_commit(self, repo: _Repo, parent: str | None, files: dict, title: str,
                    message: str = "") -> _Commit:
        self._counter += 1
        seed = f"{repo.repo_type}/{repo.repo_id}/{parent}/{self._counter}/{time.time_ns()}"
        commit = _Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, title, message, _now(),
                         files)
        repo.commits[commit.sha] = commit
        return commit

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.url}/{_PREFIX[repo.repo_type]}{repo.repo_id}"

    @staticmethod
    def _lfs_patterns(commit: _Commit) -> list:
        attributes = commit.files.get(".gitattributes")
        if attributes is None:
            return []
        patterns = []
        for line in attributes.data.decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
                patterns.append(parts[0])
        return patterns

    @staticmethod
    def _matches(path: str, patterns) -> bool:
        name = path.rsplit("/", 1)[-1]
        for pattern in patterns:
            pattern = pattern.strip()
            if not pattern or pattern.startswith(("#", "!")):
                continue
            anchored = pattern.strip("/")
            if "/" in anchored:
                if fnmatch.fnmatchcase(path, anchored) or path.startswith(anchored + "/"):
                    return True
            elif fnmatch.fnmatchcase(name, anchored) or any(
                    fnmatch.fnmatchcase(part, anchored) for part in path.split("/")[:-1]):
                return True
        return False

    def _last_commit(self, repo: _Repo, commit: _Commit, path: str, is_dir: bool) -> dict:
        def state(c: _Commit):
            if is_dir:
                return tuple(sorted((p, f.git_oid) for p, f in c.files.items()
                                    if p.startswith(path + "/")))
            f = c.files.get(path)
            return None if f is None else f.git_oid

        current, wanted = commit, state(commit)
        while current.parent is not None and state(repo.commits[current.parent]) == wanted:
            current = repo.commits[current.parent]
        return {"id": current.sha, "title": current.title, "date": current.date}

    def _file_entry(self, repo, commit, path, f: _File, expand: bool) -> dict:
        entry = {"type": "file", "oid": f.git_oid, "size": f.size, "path": path}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
        if expand:
            entry["lastCommit"] = self._last_commit(repo, commit, path, is_dir=False)
        return entry

    def _dir_entry(self, repo, commit, path, expand: bool) -> dict:
        children = sorted((p, f.git_oid) for p, f in commit.files.items()
                          if p.startswith(path + "/"))
        oid = hashlib.sha1(json.dumps(children).encode()).hexdigest()
        entry = {"type": "directory", "oid": oid, "size": 0, "path": path}
        if expand:
            entry["lastCommit"] = self._last_commit(repo, commit, path, is_dir=True)
        return entry

    @staticmethod
    def _card_data(commit: _Commit):
        readme = commit.files.get("README.md")
        if readme is None:
            return None
        text = readme.data.decode("utf-8", "replace")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
        if not match:
            return None
        try:
            import yaml
            data = yaml.safe_load(match.group(1))
        except Exception:
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------------ routing
    def _route(self, method: str, raw_path: str):
        """``(route name, callable(request) -> _Response)`` for a request, or ``None``."""
        segs = [unquote(s) for s in raw_path.strip("/").split("/")]
        n = len(segs)
        if segs[:1] == ["api"]:
            if segs == ["api", "whoami-v2"] and method == "GET":
                return "whoami", self._h_whoami
            if segs == ["api", "agent-harnesses"] and method == "GET":
                return "agent_harnesses", lambda req: _json({"standardEnvVars": [], "harnesses": {}})
            if segs == ["api", "repos", "create"] and method == "POST":
                return "create", self._h_create
            if segs == ["api", "repos", "delete"] and method == "DELETE":
                return "delete", self._h_delete
            if segs == ["api", "validate-yaml"] and method == "POST":
                return "validate_yaml", self._h_validate_yaml
            if n >= 4 and segs[1] in _TYPES:
                rtype, rid, rest = _TYPES[segs[1]], f"{segs[2]}/{segs[3]}", segs[4:]
                return self._repo_api_route(method, rtype, rid, rest)
            return None
        # git LFS batch: /{prefix}{ns}/{name}.git/info/lfs/objects/batch
        if n >= 6 and segs[-4:] == ["info", "lfs", "objects", "batch"] and segs[-5].endswith(".git"):
            head = segs[:-4]
            rtype = "model"
            if len(head) == 3 and head[0] in _TYPES:
                rtype, head = _TYPES[head[0]], head[1:]
            if len(head) == 2 and method == "POST":
                rid = f"{head[0]}/{head[1][:-len('.git')]}"
                return "lfs_batch", lambda req: self._h_lfs_batch(req, rtype, rid)
            return None
        if segs[0] == "lfs-upload" and n == 5 and method == "PUT" and segs[1] in _PREFIX:
            rtype, rid, oid = segs[1], f"{segs[2]}/{segs[3]}", segs[4]
            return "lfs_upload", lambda req: self._h_lfs_upload(req, rtype, rid, oid)
        if segs[0] == "lfs-verify" and n == 4 and method == "POST" and segs[1] in _PREFIX:
            rtype, rid = segs[1], f"{segs[2]}/{segs[3]}"
            return "lfs_verify", lambda req: self._h_lfs_verify(req, rtype, rid)
        # resolve: /{prefix}{ns}/{name}/resolve/{rev}/{path}
        if method in ("GET", "HEAD"):
            rtype, body = "model", segs
            if segs[0] in _TYPES and segs[0] != "models" and n >= 6 and segs[3] == "resolve":
                rtype, body = _TYPES[segs[0]], segs[1:]
            if len(body) >= 5 and body[2] == "resolve":
                rid, rev, path = f"{body[0]}/{body[1]}", body[3], "/".join(body[4:])
                return "resolve", lambda req: self._h_resolve(req, rtype, rid, rev, path)
        return None

    def _repo_api_route(self, method, rtype, rid, rest):
        first = rest[0] if rest else None
        rev = rest[1] if len(rest) > 1 else "main"
        if first is None and method == "GET":
            return "info", lambda req: self._h_info(req, rtype, rid, None)
        if first == "revision" and len(rest) >= 2 and method == "GET":
            revision = "/".join(rest[1:])
            return "info", lambda req: self._h_info(req, rtype, rid, revision)
        if first == "refs" and len(rest) == 1 and method == "GET":
            return "refs", lambda req: self._h_refs(req, rtype, rid)
        if first == "commits" and method == "GET":
            return "commits", lambda req: self._h_commits(req, rtype, rid, rev)
        if first == "branch" and len(rest) >= 2 and method in ("POST", "DELETE"):
            branch = "/".join(rest[1:])
            return "branch", lambda req: self._h_branch(req, rtype, rid, branch)
        if first == "tree" and method == "GET":
            path = "/".join(rest[2:])
            return "tree", lambda req: self._h_tree(req, rtype, rid, rev, path)
        if first == "paths-info" and method == "POST":
            return "paths_info", lambda req: self._h_paths_info(req, rtype, rid, rev)
        if first == "preupload" and method == "POST":
            return "preupload", lambda req: self._h_preupload(req, rtype, rid, rev)
        if first == "commit" and method == "POST":
            return "commit", lambda req: self._h_commit(req, rtype, rid, rev)
        if first == "parquet" and rtype == "dataset":
            return "parquet", self._h_parquet
        return None

    # ------------------------------------------------------------------ handlers
    def _h_whoami(self, req) -> _Response:
        if not req.headers.get("Authorization", "").startswith("Bearer "):
            raise _HubError(401, "Invalid credentials in Authorization header")
        return _json({
            "type": "user", "id": "0" * 24, "name": self.username, "fullname": "Loopback User",
            "email": f"{self.username}@loopback.invalid", "emailVerified": True, "isPro": False,
            "canPay": False, "orgs": [],
            "auth": {"type": "access_token",
                     "accessToken": {"displayName": "loopback", "role": "write",
                                     "createdAt": "2024-01-01T00:00:00.000Z"}},
        })

    def _h_create(self, req) -> _Response:
        payload = req.json()
        name = payload.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise _HubError(400, f"invalid repo name {name!r}")
        rtype = payload.get("type") or "model"
        if rtype not in _PREFIX:
            raise _HubError(400, f"invalid repo type {rtype!r}")
        repo_id = f"{payload.get('organization') or self.username}/{name}"
        with self._lock:
            if (rtype, repo_id) in self._repos:
                repo = self._repos[(rtype, repo_id)]
                # the client reads "url" from this 409 answer when exist_ok=True
                raise _HubError(409, f"You already created this {rtype} repo",
                                extra={"url": self._repo_url(repo)})
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            repo = _Repo(rtype, repo_id, private, _now())
            gitattributes = _File.make(DEFAULT_GITATTRIBUTES.encode(), lfs=False)
            commit = self._new_commit(repo, None, {".gitattributes": gitattributes},
                                      "initial commit")
            repo.branches["main"] = commit.sha
            self._repos[(rtype, repo_id)] = repo
            return _json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def _h_delete(self, req) -> _Response:
        payload = req.json()
        rtype = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.username}/{payload.get('name')}"
        with self._lock:
            self._repo(rtype, repo_id)
            del self._repos[(rtype, repo_id)]
        return _json({})

    def _h_validate_yaml(self, req) -> _Response:
        content = req.json().get("content", "")
        with self._lock:
            self.validated.append((req.json().get("repoType"), content))
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
        if match:
            try:
                import yaml
            except ImportError:
                yaml = None
            if yaml is not None:
                try:
                    data = yaml.safe_load(match.group(1))
                except yaml.YAMLError as e:
                    return _json({"errors": [{"message": f"invalid YAML: {e}"}]}, 400)
                if data is not None and not isinstance(data, dict):
                    return _json({"errors": [{"message": "metadata must be a YAML mapping"}]}, 400)
                known = self.known_licenses
                if known is not None and isinstance(data, dict) and "license" in data and data["license"] not in known:
                    return _json({"errors": [{"message": f'"license" must be one of [{", ".join(sorted(known))}]'}]},
                                 400)
        return _json({"errors": [], "warnings": []})

    def _h_info(self, req, rtype, rid, revision) -> _Response:
        with self._lock:
            repo = self._repo(rtype, rid)
            commit = self._commit_of(repo, revision)
            blobs = _truthy(req.query.get("blobs"))
            siblings = []
            for path in sorted(commit.files):
                f = commit.files[path]
                sibling = {"rfilename": path}
                if blobs:
                    sibling.update(size=f.size, blobId=f.git_oid)
                    if f.lfs:
                        sibling["lfs"] = {"size": f.size, "sha256": f.sha256,
                                          "pointerSize": f.pointer_size}
                siblings.append(sibling)
            info = {
                "_id": hashlib.sha1(f"{rtype}/{rid}".encode()).hexdigest()[:24], "id": rid,
                "author": rid.split("/")[0], "sha": commit.sha, "lastModified": commit.date,
                "createdAt": repo.created_at, "private": repo.private, "gated": False,
                "disabled": False, "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
            }
            card = self._card_data(commit)
            if card is not None:
                info["cardData"] = card
            if rtype == "model":
                info["modelId"] = rid
                if card and isinstance(card.get("library_name"), str):
                    info["library_name"] = card["library_name"]
            return _json(info)

    def _h_refs(self, req, rtype, rid) -> _Response:
        with self._lock:
            repo = self._repo(rtype, rid)
            branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": sha}
                        for b, sha in sorted(repo.branches.items())]
            return _json({"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def _h_commits(self, req, rtype, rid, rev) -> _Response:
        with self._lock:
            repo = self._repo(rtype, rid)
            commit = self._commit_of(repo, rev)
            out = []
            while commit is not None:
                out.append({"id": commit.sha, "title": commit.title, "message": commit.message,
                            "authors": [{"user": self.username}], "date": commit.date})
                commit = repo.commits[commit.parent] if commit.parent else None
            return _json(out)

    def _h_branch(self, req, rtype, rid, branch) -> _Response:
        with self._lock:
            repo = self._repo(rtype, rid)
            if req.method == "DELETE":
                if branch not in repo.branches:
                    raise _HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                del repo.branches[branch]
                return _json({})
            if branch in repo.branches:
                raise _HubError(409, "Reference already exists")
            start = (req.json() if req.body else {}).get("startingPoint")
            repo.branches[branch] = self._commit_of(repo, start).sha
            return _json({})

    def _h_parquet(self, req) -> _Response:
        raise _HubError(404, "No parquet conversion on the loopback hub")

    def _listing_commit(self, rtype, rid, rev):
        repo = self._repo(rtype, rid)
        return repo, self._commit_of(repo, rev)

    def _h_tree(self, req, rtype, rid, rev, path) -> _Response:
        recursive = _truthy(req.query.get("recursive"))
        expand = _truthy(req.query.get("expand"))
        prefix = path.strip("/")
        with self._lock:
            repo, commit = self._listing_commit(rtype, rid, rev)
            under = {p: f for p, f in commit.files.items()
                     if not prefix or p.startswith(prefix + "/")}
            if prefix and not under:
                raise _HubError(404, f"{path} does not exist on {rev}", "EntryNotFound",
                                headers={"X-Repo-Commit": commit.sha})
            files, dirs = {}, set()
            for p, f in under.items():
                rel = p[len(prefix) + 1:] if prefix else p
                parts = rel.split("/")
                if recursive:
                    files[p] = f
                    for i in range(1, len(parts)):
                        dirs.add("/".join(([prefix] if prefix else []) + parts[:i]))
                elif len(parts) == 1:
                    files[p] = f
                else:
                    dirs.add(f"{prefix}/{parts[0]}" if prefix else parts[0])
            entries = [self._dir_entry(repo, commit, d, expand) for d in sorted(dirs)]
            entries += [self._file_entry(repo, commit, p, files[p], expand) for p in sorted(files)]
            return _json(entries)

    def _h_paths_info(self, req, rtype, rid, rev) -> _Response:
        if req.headers.get("Content-Type", "").startswith("application/json"):
            payload = req.json()
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
            paths = [paths] if isinstance(paths, str) else paths
        else:
            form = parse_qs(req.body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), _truthy(form.get("expand"))
        with self._lock:
            repo, commit = self._listing_commit(rtype, rid, rev)
            out = []
            for raw in paths:
                p = raw.strip("/")
                if p in commit.files:
                    out.append(self._file_entry(repo, commit, p, commit.files[p], expand))
                elif p and any(q.startswith(p + "/") for q in commit.files):
                    out.append(self._dir_entry(repo, commit, p, expand))
            return _json(out)

    def _writable_head(self, repo: _Repo, rev: str, req) -> _Commit:
        if _truthy(req.query.get("create_pr")):
            raise _HubError(400, "pull requests are not implemented by the loopback hub")
        branch = rev.removeprefix("refs/heads/")
        if branch not in repo.branches:
            if self._resolve(repo, rev) is not None:
                raise _HubError(400, f"can only commit to a branch, not to {rev!r}")
            raise _HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.head(branch)

    def _h_preupload(self, req, rtype, rid, rev) -> _Response:
        payload = req.json()
        ignore = [line for line in (payload.get("gitIgnore") or "").splitlines()]
        with self._lock:
            repo = self._repo(rtype, rid)
            head = self._writable_head(repo, rev, req)
            patterns = self._lfs_patterns(head)
            out = []
            for item in payload.get("files", []):
                path, size = item["path"], int(item.get("size", 0))
                sample = base64.b64decode(item.get("sample", ""))
                lfs = size >= LFS_SIZE_THRESHOLD or b"\0" in sample or self._matches(path, patterns)
                entry = {"path": path, "uploadMode": "lfs" if lfs else "regular",
                         "shouldIgnore": bool(ignore) and self._matches(path, ignore)}
                existing = head.files.get(path)
                if existing is not None:
                    entry["oid"] = existing.sha256 if existing.lfs else existing.git_oid
                out.append(entry)
            return _json({"files": out, "commitOid": head.sha})

    def _h_commit(self, req, rtype, rid, rev) -> _Response:
        try:
            ops = [json.loads(line) for line in req.body.decode().splitlines() if line.strip()]
        except ValueError as e:
            raise _HubError(400, f"malformed NDJSON commit payload: {e}")
        headers = [op.get("value", {}) for op in ops if op.get("key") == "header"]
        if len(headers) != 1:
            raise _HubError(400, "a commit payload needs exactly one header line")
        header = headers[0]
        with self._lock:
            repo = self._repo(rtype, rid)
            head = self._writable_head(repo, rev, req)
            parent = header.get("parentCommit")
            if parent and not head.sha.startswith(parent):
                raise _HubError(412, f"parentCommit {parent} is not the head of {rev} ({head.sha})")
            files = dict(head.files)
            for op in ops:
                key, value = op.get("key"), op.get("value", {})
                if key == "header":
                    continue
                path = str(value.get("path", "")).strip("/")
                if not path and key != "deletedFolder":
                    raise _HubError(400, f"{key} without a path")
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        content = str(value.get("content", "")).encode()
                    else:
                        content = base64.b64decode(value.get("content", ""))
                    files[path] = _File.make(content, lfs=False)
                elif key == "lfsFile":
                    oid = value.get("oid", "")
                    data = repo.lfs_objects.get(oid)
                    if data is None:
                        raise _HubError(400, f"LFS object {oid} of {path} was never uploaded to "
                                             f"{rtype} {rid}")
                    if value.get("size") is not None and int(value["size"]) != len(data):
                        raise _HubError(400, f"size {value['size']} of {path} does not match the "
                                             f"uploaded object ({len(data)} bytes)")
                    files[path] = _File.make(data, lfs=True)
                elif key == "deletedFile":
                    if path not in files:
                        raise _HubError(404, f"A file with this name doesn't exist: {path}",
                                        "EntryNotFound", headers={"X-Repo-Commit": head.sha})
                    del files[path]
                elif key == "deletedFolder":
                    doomed = [p for p in files if not path or p.startswith(path + "/")]
                    if not doomed:
                        raise _HubError(404, f"A folder with this name doesn't exist: {path}",
                                        "EntryNotFound", headers={"X-Repo-Commit": head.sha})
                    for p in doomed:
                        del files[p]
                else:
                    raise _HubError(400, f"unknown commit operation {key!r}")
            branch = rev.removeprefix("refs/heads/")
            commit = self._new_commit(repo, head.sha, files, header.get("summary") or "commit",
                                      header.get("description") or "")
            repo.branches[branch] = commit.sha
            return _json({"success": True, "commitOid": commit.sha,
                          "commitUrl": f"{self._repo_url(repo)}/commit/{commit.sha}",
                          "hookOutput": "", "pullRequestUrl": None})

    def _h_lfs_batch(self, req, rtype, rid) -> _Response:
        payload = req.json()
        if payload.get("operation") != "upload":
            raise _HubError(400, "the loopback hub implements only LFS uploads")
        if "basic" not in (payload.get("transfers") or ["basic"]):
            raise _HubError(400, "the loopback hub implements only the basic LFS transfer")
        with self._lock:
            repo = self._repo(rtype, rid)
            objects = []
            for obj in payload.get("objects", []):
                oid, size = str(obj.get("oid", "")), obj.get("size")
                entry = {"oid": oid, "size": size, "authenticated": True}
                if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int):
                    entry["error"] = {"code": 422, "message": "invalid oid or size"}
                    entry["size"] = size if isinstance(size, int) else 0
                elif oid not in repo.lfs_objects:
                    base = f"{rtype}/{rid}"
                    entry["actions"] = {
                        "upload": {"href": f"{self.url}/lfs-upload/{base}/{oid}?size={size}",
                                   "header": {}},
                        "verify": {"href": f"{self.url}/lfs-verify/{base}", "header": {}},
                    }
                objects.append(entry)
        return _json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                     content_type="application/vnd.git-lfs+json")

    def _h_lfs_upload(self, req, rtype, rid, oid) -> _Response:
        digest = hashlib.sha256(req.body).hexdigest()
        if digest != oid:
            raise _HubError(400, f"sha256 of the uploaded body ({digest}) does not match the oid {oid}")
        size = req.query.get("size")
        if size and int(size[-1]) != len(req.body):
            raise _HubError(400, f"uploaded {len(req.body)} bytes, the batch announced {size[-1]}")
        with self._lock:
            self._repo(rtype, rid).lfs_objects[oid] = req.body
        return _Response(200, b"", {"ETag": f'"{oid}"'})

    def _h_lfs_verify(self, req, rtype, rid) -> _Response:
        payload = req.json()
        with self._lock:
            data = self._repo(rtype, rid).lfs_objects.get(payload.get("oid"))
        if data is None or (payload.get("size") is not None and payload["size"] != len(data)):
            raise _HubError(404, f"LFS object {payload.get('oid')} not found (or wrong size)")
        return _json({})

    def _h_resolve(self, req, rtype, rid, rev, path) -> _Response:
        with self._lock:
            repo = self._repo(rtype, rid)
            commit = self._commit_of(repo, rev)
            f = commit.files.get(path)
        if f is None:
            raise _HubError(404, f"Entry not found: {path}", "EntryNotFound",
                            headers={"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{f.git_oid}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream",
                   "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"'}
        if f.lfs:
            headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size)})
        data, size = f.data, f.size
        spec = req.headers.get("Range")
        match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", spec) if spec else None
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
                bad = start >= size or (last and int(last) < start)
            else:
                suffix = int(last)
                start, end = max(0, size - suffix), size - 1
                bad = suffix == 0 or size == 0
            if bad:
                return _Response(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return _Response(206, data[start:end + 1], headers)
        return _Response(200, data, headers)


class _Request:
    def __init__(self, method: str, path: str, query: dict, headers, body: bytes):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body

    def json(self) -> dict:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as e:
            raise _HubError(400, f"malformed JSON body: {e}")
        if not isinstance(data, dict):
            raise _HubError(400, "expected a JSON object")
        return data


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LoopbackHub/1"
    timeout = 60            # idle keep-alive connections are closed after this many seconds
    hub: LoopbackHub        # set on the subclass made by LoopbackHub.start

    def log_message(self, format, *args):   # keep test output clean
        pass

    def setup(self):
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)

    def finish(self):
        with self.hub._lock:
            self.hub._connections.discard(self.connection)
        with contextlib.suppress(OSError):   # the connection was closed by LoopbackHub.stop
            super().finish()

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass        # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        body = self._read_body()
        with hub._lock:
            hub.requests.append((method, split.path))
        req = _Request(method, split.path, parse_qs(split.query, keep_blank_values=True),
                       self.headers, body)
        try:
            found = hub._route(method, split.path)
            if found is None:
                with hub._lock:
                    hub.unhandled.append((method, split.path))
                raise _HubError(404, f"Not Found: the loopback hub has no route for {method} "
                                     f"{split.path}")
            route, handler = found
            if route in WRITE_ROUTES and not req.headers.get("Authorization", "").startswith("Bearer "):
                # as the Hub: writing needs a token (its value is not checked here)
                raise _HubError(401, "Invalid username or password.")
            failure = hub._take_failure(route)
            if failure == "interrupt":  # interrupt_next: Ctrl-C in the client's process while it waits
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                time.sleep(0.2)  # the client is gone before the answer
                raise _HubError(499, "client closed the request")
            if failure is not None:
                raise _HubError(failure[0], failure[1])
            response = handler(req)
        except _HubError as e:
            headers = {"Content-Type": "application/json", "X-Error-Message": e.message, **e.headers}
            if e.code:
                headers["X-Error-Code"] = e.code
            response = _Response(e.status, json.dumps({"error": e.message, **e.extra}).encode(),
                                 headers)
        except Exception as e:     # a bug in the server: answer 500 with the reason
            response = _Response(500, json.dumps({"error": f"loopback hub bug: {e!r}"}).encode(),
                                 {"Content-Type": "application/json"})
        self._send(method, response)

    def _send(self, method: str, response: _Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value.encode("latin-1", "replace").decode("latin-1")
                             .replace("\r", " ").replace("\n", " "))
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if method != "HEAD" and response.body:
            self.wfile.write(response.body)
