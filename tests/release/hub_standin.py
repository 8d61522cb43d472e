"""A small local stand-in for the Hugging Face Hub API, for tests (127.0.0.1 only).

Select it with ``HF_ENDPOINT=<standin.endpoint>`` and ``HF_HUB_DISABLE_XET=1``: it speaks the
legacy git-LFS "basic" transfer, not Xet, so only the tests that push to it turn Xet off (the
``hub`` fixture). ``spa-vl release`` itself never does: it uploads through huggingface_hub's
default path, Xet on the Hub, which sends only the chunks the Hub does not hold yet, so a new
version uploads about what changed. It serves what the real ``huggingface_hub`` client and
``datasets.load_dataset`` call for a dataset repo, and reproduces these Hub behaviours:

- ``POST /api/repos/create``: a new repo gets an "initial commit" holding ``.gitattributes``
  (parquet and other binaries tracked by LFS); an existing repo answers 409.
- ``POST /api/validate-yaml``: 400 with ``errors`` when the README front matter is not YAML.
- ``POST /api/datasets/{id}/preupload/{rev}``: ``uploadMode`` "lfs" for parquet/binary or large
  files, "regular" otherwise, and the ``oid`` of the file already at that revision (sha256 for
  LFS, git blob sha1 for regular files), which the client uses to skip unchanged files.
- ``POST /datasets/{id}.git/info/lfs/objects/batch``: upload actions only for objects not
  stored yet; ``PUT`` the bytes (sha256 and size checked) and ``POST`` verify.
- ``POST /api/datasets/{id}/commit/{rev}`` (ndjson): regular files, LFS pointers (the object
  must have been uploaded, else 422), file and folder deletions; ``parentCommit`` must be the
  branch head, else 412 as on the Hub.
- ``POST /api/datasets/{id}/tag/{rev}`` (409 when the tag exists), ``GET .../refs``,
  ``GET .../commits/{rev}``, ``GET /api/datasets/{id}[/revision/{rev}]`` (with ``gated``).
- ``PUT /api/datasets/{id}/settings`` (``HfApi.update_repo_settings``): ``gated`` "auto",
  "manual" or false (any other value is a 400), ``visibility``; a write token is needed. Each
  call is recorded in ``HubStandin.settings_calls``; ``Repo.gated`` holds the result and the
  repo info reports it. That a gated repo then asks users for the form is the Hub's, not
  reproduced: downloads here stay open.
- ``GET .../tree/{rev}[/{path}]`` and ``POST .../paths-info/{rev}``: entries with ``oid``,
  ``size`` and, for LFS files, ``lfs: {oid (sha256), size, pointerSize}``.
- ``HEAD/GET /datasets/{id}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` and
  ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, byte ranges; errors carry
  ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) as on the Hub.
- Tokens: a bad token is 401 "Invalid credentials in Authorization header" on any request;
  writing needs a "write" token (a "read" token gets 403); private repos are 404 without one.

Not reproduced: Xet storage, pagination, multipart LFS, PRs, access requests to gated repos,
rate limits (inject a 429).

Faults are injected per request with :meth:`HubStandin.fail`: a status code (500, 429, 401...),
``"drop"`` (read half of the request body, then close the connection without an answer: a
connection lost mid-upload) or ``"drop_after"`` (apply the request, then close without an
answer: a response lost after the Hub did the work).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

import spa_vl.release.hub as hub_module
from spa_vl.release.hub import RetryPolicy

GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
LFS_SUFFIXES = (".parquet", ".arrow", ".png", ".jpg", ".zip", ".bin")
LFS_MIN_SIZE = 10 * 1024 * 1024
REPO = "spa-org/spa-vl"  # the repository the push tests push to
# Also shared by the push tests: retries without waiting, the real card check (for the tests that
# want it back), and huggingface_hub's LFS PUT passing a file object as `data=` (httpx2
# deprecates it; not ours).
FAST = RetryPolicy(attempts=3, base_delay=0.0)
REAL_CARD_CHECK = hub_module._card_problems
HUB_WARNINGS = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


WRITE_TOKEN = "hf_test_write_SECRET_1234567890"  # tokens the tests hand to HubStandin
READ_TOKEN = "hf_test_read_SECRET_0987654321"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class Blob:
    data: bytes | None  # regular files: the bytes; LFS files: None (bytes live in the LFS store)
    size: int
    sha256: str | None = None  # LFS files only

    @property
    def oid(self) -> str:
        """Git blob id: of the content, or of the pointer file for LFS (as git does)."""
        if self.sha256 is None:
            assert self.data is not None
            return git_blob_sha1(self.data)
        return git_blob_sha1(lfs_pointer(self.sha256, self.size))


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    description: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_id: str
    private: bool
    gated: str | bool = False  # "auto" | "manual" | False, as the Hub's repo info reports it
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        oid = self.branches.get(rev) or self.tags.get(rev) or rev
        return self.commits.get(oid)

    def history(self, rev: str) -> list[Commit]:
        """Commits reachable from ``rev``, newest first."""
        out, commit = [], self.resolve(rev)
        while commit is not None:
            out.append(commit)
            commit = self.commits.get(commit.parent) if commit.parent else None
        return out


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    action: int | str  # status code, "drop" or "drop_after"
    times: int
    hits: int = 0


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubStandin:
    """The Hub's state (repos, LFS store, tokens), the request log and the faults to inject."""

    def __init__(self, tokens: dict[str, str] | None = None):
        self.tokens = dict(tokens or {})  # token -> "write" | "read"
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.auth_seen: list[str] = []  # Authorization headers, to check the token was sent
        self.settings_calls: list[tuple[str, dict]] = []  # (repo id, JSON body) per settings PUT
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self.endpoint = ""

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> HubStandin:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        server = self._server
        threading.Thread(target=lambda: server.serve_forever(0.05), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- test helpers -------------------------------------------------------------------
    def fail(self, method: str, path_regex: str, action: int | str, times: int = 1) -> Fault:
        """Answer the next ``times`` matching requests with ``action`` instead of serving them."""
        fault = Fault(method.upper(), re.compile(path_regex), action, times)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, method: str, path_regex: str) -> int:
        rx = re.compile(path_regex)
        return sum(1 for m, p in self.requests if m == method.upper() and rx.search(p))

    def repo(self, repo_id: str) -> Repo:
        return self.repos[repo_id]

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.pattern.search(path) and fault.hits < fault.times:
                    fault.hits += 1
                    return fault
        return None

    # -- state changes --------------------------------------------------------------------
    def _new_oid(self, *parts: str) -> str:
        self._counter += 1
        return hashlib.sha1("\0".join((str(self._counter), *parts)).encode()).hexdigest()

    def create_repo(self, repo_id: str, private: bool) -> Repo:
        with self._lock:
            if repo_id in self.repos:
                raise HubError(409, "You already created this dataset repo")
            repo = Repo(repo_id, private)
            oid = self._new_oid(repo_id, "initial")
            blob = Blob(GITATTRIBUTES, len(GITATTRIBUTES))
            repo.commits[oid] = Commit(oid, None, "initial commit", "", {".gitattributes": blob})
            repo.branches["main"] = oid
            self.repos[repo_id] = repo
            return repo

    def commit(self, repo: Repo, branch: str, lines: list[dict]) -> Commit:
        with self._lock:
            head = repo.branches.get(branch)
            if head is None:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
            parent = header.get("parentCommit")
            if parent and not head.startswith(parent):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(repo.commits[head].files)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"]
                if key == "file":
                    data = base64.b64decode(value["content"])
                    files[path] = Blob(data, len(data))
                elif key == "lfsFile":
                    stored = self.lfs.get(value["oid"])
                    if stored is None:
                        raise HubError(422, f"LFS object {value['oid']} of {path} was never uploaded")
                    files[path] = Blob(None, len(stored), value["oid"])
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    for p in [p for p in files if p.startswith(prefix)]:
                        del files[p]
                else:
                    raise HubError(400, f"unknown commit operation {key!r}")
            oid = self._new_oid(repo.repo_id, head, json.dumps(lines, sort_keys=True))
            commit = Commit(oid, head, header.get("summary", ""), header.get("description", ""), files)
            repo.commits[oid] = commit
            repo.branches[branch] = oid
            return commit

    def create_tag(self, repo: Repo, rev: str, tag: str) -> None:
        with self._lock:
            target = repo.resolve(rev)
            if target is None:
                raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = target.oid

    def read(self, blob: Blob) -> bytes:
        if blob.sha256 is None:
            assert blob.data is not None
            return blob.data
        return self.lfs[blob.sha256]


# -- HTTP -------------------------------------------------------------------------------------
_REPO = r"(?P<type>datasets|models|spaces)/(?P<repo>[^/]+/[^/]+)"
_ROUTES: list[tuple[str, re.Pattern, str]] = [
    (m, re.compile(rx), name)
    for m, rx, name in [
        ("POST", r"^/api/repos/create$", "create_repo"),
        ("POST", r"^/api/validate-yaml$", "validate_yaml"),
        ("GET", rf"^/api/{_REPO}/refs$", "refs"),
        ("GET", rf"^/api/{_REPO}(/revision/(?P<rev>[^/]+))?$", "info"),
        ("POST", rf"^/api/{_REPO}/preupload/(?P<rev>[^/]+)$", "preupload"),
        ("POST", rf"^/api/{_REPO}/commit/(?P<rev>[^/]+)$", "commit"),
        ("POST", rf"^/api/{_REPO}/tag/(?P<rev>[^/]+)$", "tag"),
        ("PUT", rf"^/api/{_REPO}/settings$", "settings"),
        ("GET", rf"^/api/{_REPO}/commits/(?P<rev>[^/]+)$", "commits"),
        ("GET", rf"^/api/{_REPO}/tree/(?P<rev>[^/]+)(/(?P<path>.*))?$", "tree"),
        ("POST", rf"^/api/{_REPO}/paths-info/(?P<rev>[^/]+)$", "paths_info"),
        (
            "POST",
            r"^/(?P<type>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$",
            "lfs_batch",
        ),
        ("PUT", r"^/__lfs/(?P<oid>[0-9a-f]{64})$", "lfs_put"),
        ("POST", r"^/__lfs/verify$", "lfs_verify"),
        ("GET", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
        ("HEAD", rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$", "resolve"),
    ]
]


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Small answers sent as headers + body would otherwise wait on delayed ACKs (~40 ms each).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # -- plumbing ---------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        hub = self.hub
        url = urlsplit(self.path)
        path = unquote(url.path)
        with hub._lock:
            hub.requests.append((method, path))
            hub.auth_seen.append(self.headers.get("Authorization", ""))
        length = int(self.headers.get("Content-Length") or 0)
        fault = hub.take_fault(method, path)
        if fault is not None and fault.action == "drop":
            self.rfile.read(length // 2)  # the connection dies mid-request
            self._drop()
            return
        body = self._read_chunked() if not length and self._chunked() else self.rfile.read(length)
        if fault is not None and isinstance(fault.action, int):
            self._send(fault.action, {"error": f"injected {fault.action}"})
            return
        try:
            for m, rx, name in _ROUTES:
                match = rx.match(path) if m == method else None
                if match:
                    args = {k: v for k, v in match.groupdict().items() if v is not None}
                    if "repo" in args:
                        args["repo"] = args["repo"].removesuffix(".git")
                    status, payload, headers = getattr(self, "_" + name)(body, parse_qs(url.query), **args)
                    break
            else:
                raise HubError(404, f"stand-in: no route for {method} {path}")
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            status, payload = err.status, {"error": err.message}
        if fault is not None and fault.action == "drop_after":
            self._drop()  # the work is done, the answer is lost
            return
        self._send(status, payload, headers)

    def _chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _read_chunked(self) -> bytes:
        # Some client versions stream file bodies without a Content-Length.
        out = bytearray()
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            out += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return bytes(out)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have hung up first
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
        if isinstance(payload, bytes):
            data, ctype = payload, "application/octet-stream"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    # -- auth ---------------------------------------------------------------------------------
    def _access(self) -> str | None:
        """ "write", "read" or None (anonymous); a token the Hub does not know is a 401."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        level = self.hub.tokens.get(token)
        if level is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return level

    def _writable(self, repo_id: str) -> Repo:
        level = self._access()
        if level is None:
            raise HubError(401, "Invalid username or password.")
        if level != "write":
            raise HubError(403, "You don't have the rights to write to this repository")
        return self._repo(repo_id, level)

    def _readable(self, repo_id: str) -> Repo:
        return self._repo(repo_id, self._access())

    def _repo(self, repo_id: str, level: str | None) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and level is None):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_at(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(unquote(rev))
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    # -- routes -------------------------------------------------------------------------------
    def _create_repo(self, body: bytes, query: dict) -> tuple:
        data = json.loads(body)
        repo_id = f"{data.get('organization') or 'user'}/{data['name']}"
        level = self._access()
        if level is None:
            raise HubError(401, "Invalid username or password.")
        if level != "write":
            raise HubError(403, "You don't have the rights to create a repository here")
        private = data.get("visibility") == "private" or bool(data.get("private"))
        url = f"{self.hub.endpoint}/datasets/{repo_id}"
        if repo_id in self.hub.repos:  # the Hub's 409 still names the repo's url
            return 409, {"error": "You already created this dataset repo", "url": url}, None
        self.hub.create_repo(repo_id, private)
        return 200, {"url": url, "name": repo_id}, None

    def _validate_yaml(self, body: bytes, query: dict) -> tuple:
        content = json.loads(body)["content"]
        match = re.match(r"^---\n(.*?)\n---", content, re.S)
        try:
            yaml.safe_load(match.group(1) if match else "")
        except yaml.YAMLError as exc:
            return 400, {"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []}, None
        return 200, {"errors": [], "warnings": []}, None

    def _refs(self, body: bytes, query: dict, type: str, repo: str) -> tuple:
        r = self._readable(repo)

        def ref(kind: str, name: str, oid: str) -> dict:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        return (
            200,
            {
                "branches": [ref("heads", n, o) for n, o in r.branches.items()],
                "tags": [ref("tags", n, o) for n, o in r.tags.items()],
                "converts": [],
            },
            None,
        )

    def _info(self, body: bytes, query: dict, type: str, repo: str, rev: str = "main") -> tuple:
        r = self._readable(repo)
        commit = self._commit_at(r, rev)
        siblings = [{"rfilename": p} for p in sorted(commit.files)]
        info = {"id": repo, "sha": commit.oid, "private": r.private, "gated": r.gated, "siblings": siblings}
        return 200, info, None

    def _settings(self, body: bytes, query: dict, type: str, repo: str) -> tuple:
        r = self._writable(repo)
        data = json.loads(body or b"{}")
        if "gated" in data and data["gated"] not in ("auto", "manual", False):
            raise HubError(400, f"gated must be 'auto', 'manual' or false, not {data['gated']!r}")
        with self.hub._lock:
            self.hub.settings_calls.append((repo, data))
            if "gated" in data:
                r.gated = data["gated"]
            if "visibility" in data:
                r.private = data["visibility"] == "private"
        return 200, {}, None

    def _preupload(self, body: bytes, query: dict, type: str, repo: str, rev: str) -> tuple:
        r = self._writable(repo)
        commit = self._commit_at(r, rev)
        out = []
        for f in json.loads(body)["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].endswith(LFS_SUFFIXES) or b"\0" in sample or f["size"] >= LFS_MIN_SIZE
            blob = commit.files.get(f["path"])
            oid = None
            if blob is not None:
                oid = blob.sha256 if blob.sha256 is not None else git_blob_sha1(blob.data or b"")
            out.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        return 200, {"files": out, "commitOid": commit.oid}, None

    def _lfs_batch(self, body: bytes, query: dict, repo: str, type: str = "") -> tuple:
        self._writable(repo)
        objects = []
        for obj in json.loads(body)["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.endpoint}/__lfs/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.hub.endpoint}/__lfs/verify", "header": {}},
                }
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects}, None

    def _lfs_put(self, body: bytes, query: dict, oid: str) -> tuple:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"content does not match sha256 {oid}")
        with self.hub._lock:
            self.hub.lfs[oid] = body
        return 200, {}, None

    def _lfs_verify(self, body: bytes, query: dict) -> tuple:
        data = json.loads(body)
        stored = self.hub.lfs.get(data["oid"])
        if stored is None or len(stored) != data["size"]:
            raise HubError(404, f"LFS object {data['oid']} not found")
        return 200, {}, None

    def _commit(self, body: bytes, query: dict, type: str, repo: str, rev: str) -> tuple:
        r = self._writable(repo)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        commit = self.hub.commit(r, unquote(rev), lines)
        url = f"{self.hub.endpoint}/datasets/{repo}/commit/{commit.oid}"
        return 200, {"success": True, "commitOid": commit.oid, "commitUrl": url}, None

    def _tag(self, body: bytes, query: dict, type: str, repo: str, rev: str) -> tuple:
        r = self._writable(repo)
        self.hub.create_tag(r, unquote(rev), json.loads(body)["tag"])
        return 200, {}, None

    def _commits(self, body: bytes, query: dict, type: str, repo: str, rev: str) -> tuple:
        r = self._readable(repo)
        self._commit_at(r, rev)
        history = [
            {
                "id": c.oid,
                "title": c.title,
                "message": c.description,
                "authors": [],
                "date": "2026-01-01T00:00:00.000Z",
            }
            for c in r.history(unquote(rev))
        ]
        return 200, history, None

    def _entries(self, commit: Commit, paths: list[str], recursive: bool) -> list[dict]:
        out: dict[str, dict] = {}
        for want in paths:
            prefix = want.strip("/")
            for p, blob in sorted(commit.files.items()):
                if prefix and p != prefix and not p.startswith(prefix + "/"):
                    continue
                rest = p[len(prefix) + 1 :] if prefix and p != prefix else p
                if p == prefix:
                    out[p] = self._file_entry(p, blob)
                    continue
                parts = rest.split("/")
                base = f"{prefix}/" if prefix else ""
                for depth in range(1, len(parts)):
                    folder = base + "/".join(parts[:depth])
                    out.setdefault(folder, {"type": "directory", "oid": "0" * 40, "size": 0, "path": folder})
                    if not recursive:
                        break
                if recursive or len(parts) == 1:
                    out[p] = self._file_entry(p, blob)
        return list(out.values())

    @staticmethod
    def _file_entry(path: str, blob: Blob) -> dict:
        entry: dict[str, Any] = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
        if blob.sha256 is not None:
            pointer = lfs_pointer(blob.sha256, blob.size)
            entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(pointer)}
        return entry

    def _tree(self, body: bytes, query: dict, type: str, repo: str, rev: str, path: str = "") -> tuple:
        commit = self._commit_at(self._readable(repo), rev)
        recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
        if (
            path
            and path not in commit.files
            and not any(p.startswith(path.rstrip("/") + "/") for p in commit.files)
        ):
            raise HubError(404, f"{path} does not exist", "EntryNotFound")
        return 200, self._entries(commit, [path], recursive), None

    def _paths_info(self, body: bytes, query: dict, type: str, repo: str, rev: str) -> tuple:
        commit = self._commit_at(self._readable(repo), rev)
        paths = parse_qs(body.decode())["paths"] if body else []
        out = []
        for p in paths:
            p = p.strip("/")
            if p in commit.files:
                out.append(self._file_entry(p, commit.files[p]))
            elif any(q.startswith(p + "/") for q in commit.files):
                out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": p})
        return 200, out, None

    def _resolve(self, body: bytes, query: dict, type: str, repo: str, rev: str, path: str) -> tuple:
        commit = self._commit_at(self._readable(repo), rev)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        data = self.hub.read(blob)
        etag = f'"{blob.sha256 or blob.oid}"'
        headers = {"X-Repo-Commit": commit.oid, "ETag": etag, "Accept-Ranges": "bytes"}
        if blob.sha256 is not None:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(blob.size)})
        rng = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if rng and self.command == "GET":
            start = int(rng.group(1))
            end = int(rng.group(2)) if rng.group(2) else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return 206, data[start : end + 1], headers
        if self.command == "HEAD":
            headers["Content-Length"] = str(len(data))
        return 200, data, headers
