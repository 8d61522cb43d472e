"""Push a release folder to the Hugging Face Hub as one commit and tag it ``vX.Y.Z``.

Order of work, each step safe to repeat (so a push killed at any point can simply be re-run):

1. local checks: manifest checksums and the card check, and the card must say what the push
   will make true (its repository, whether it is gated); nothing leaves the machine before;
2. access: with ``--gated auto|manual`` the repository is gated (repo settings) before any data
   file is uploaded, so the data is never downloadable without the form; then the Hub's gating
   is read back and must be what the card says (a repo gated by hand under a card that says
   "not gated" is refused);
3. the tag: if ``vX.Y.Z`` exists, its files must be exactly this folder (then there is nothing
   to do) or the push is refused: a released version never changes;
4. the commit: if ``main`` already holds exactly these files (an earlier run committed, then
   died), it is reused; otherwise ``upload_folder`` makes one commit "Release vX.Y.Z" on top of
   the head it checked (``parent_commit``), deleting files of older versions;
5. the files of that commit are compared with the manifest *before* it is tagged, so a tag
   never lands on a commit that is not this release; then the tag, then the same comparison at
   the tag.

Files go up through huggingface_hub's default upload path (Xet storage on the Hub): only the
chunks the Hub does not hold yet are sent, so a new version uploads about what changed. 429 and
5xx answers and lost connections are retried with exponential backoff. The token comes from
``HF_TOKEN`` or the saved login and is scrubbed from every message we emit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from spa_vl.errors import HUB_UNREACHABLE, SpaVLError, is_network_failure
from spa_vl.names import is_repo_id, is_version
from spa_vl.problems import Issue
from spa_vl.release.hub_retry import (
    RetryPolicy,
    http_status,
    human_size,
    offline,
    reason,
    retry_after,
    scrub,
    transient,
)
from spa_vl.release.manifest import MANIFEST_NAME, ReleaseManifest, sha256_file
from spa_vl.release.verify import verify_release

T = TypeVar("T")

REPO_TYPE = "dataset"
GATED_MODES = ("auto", "manual")  # huggingface_hub's update_repo_settings(gated=...)
HUB_OWNED = frozenset({".gitattributes"})  # created by the Hub with the repo; not ours to check


class ReleaseError(SpaVLError):
    """A push that did not complete; ``exit_code`` follows the CLI convention (the CLI's error
    boundary prints it as one line, then the problems one per line)."""

    exit_code = 2

    def __init__(self, message: str, problems: Sequence[str | Issue] | None = None):
        super().__init__(message)
        self.message = message
        # The one problem type (``issues``); ``problems`` keeps their lines for messages.
        self.issues: list[Issue] = [
            p if isinstance(p, Issue) else ReleaseProblem.from_text(p) for p in problems or []
        ]
        self.problems = [str(p) for p in self.issues]

    def __str__(self) -> str:
        return "\n  ".join([self.message, *self.problems])


@dataclass(frozen=True)
class ReleaseProblem(Issue):
    """A release check's problem: ``where`` is the file (in the folder or on the Hub)."""

    where: str
    code: str
    message: str

    @classmethod
    def from_text(cls, text: str, code: str = "release") -> ReleaseProblem:
        """``PATH: message`` split so that ``str()`` gives ``text`` back."""
        where, sep, message = text.partition(": ")
        return cls(where, code, message) if sep else cls("", code, text)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ReleaseRefused(ReleaseError):
    """The data failed a check: inconsistent folder, or a tag that already holds other files."""

    exit_code = 1


class HubFailure(ReleaseError):
    """The Hub or the network refused or failed (auth, permissions, outage)."""

    exit_code = 2


@dataclass(frozen=True)
class PushPlan:
    """What a push would do; built from local files only."""

    folder: Path
    repo_id: str
    version: str
    files: tuple[tuple[str, int], ...]  # (path, bytes), MANIFEST.json included
    private: bool = False
    message: str | None = None
    gated: str | None = None  # "auto" or "manual": gate the repository; None: leave it open

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    @property
    def commit_message(self) -> str:
        return f"Release {self.tag}"

    def render(self, endpoint: str) -> str:
        total = sum(size for _, size in self.files)
        lines = [
            f"target:  {endpoint.rstrip('/')}/datasets/{self.repo_id} "
            f"({'private' if self.private else 'public'} dataset repo, created if missing)",
            f'commit:  "{self.commit_message}" on main (files of older versions are removed)',
            f"tag:     {self.tag} on exactly that commit (refused if {self.tag} already exists)",
            "access:  "
            + (
                f"gated ({self.gated}: {_GATED_WORDS[self.gated]}), set before any file is uploaded"
                if self.gated
                else "not gated: anyone can download it (refused if the repo is gated on the Hub)"
            ),
            f"files:   {len(self.files)} files, {human_size(total)}",
        ]
        lines += [f"  {human_size(size):>10}  {path}" for path, size in self.files]
        return "\n".join(lines)


_GATED_WORDS = {"auto": "requests granted once the form is filled in", "manual": "each request reviewed"}


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    tag: str
    commit: str
    new_commit: bool  # False when main already held the release (resumed run)
    already_released: bool  # True when the tag existed with exactly these files
    files_checked: int
    gated: str | None = None  # the repository's gating after the push


# -- local checks ------------------------------------------------------------------------------
def plan_release(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    message: str | None = None,
    gated: str | None = None,
) -> PushPlan:
    """Check the folder locally and describe the push; raise ReleaseRefused listing problems.
    ``gated`` ("auto" or "manual") gates the repository; the card must say so."""
    root = Path(folder)
    if not is_repo_id(repo_id):
        raise ReleaseError(f"--repo-id {repo_id!r} is not of the form ORG/NAME")
    if gated is not None and gated not in GATED_MODES:
        raise ReleaseError(f"--gated {gated!r}: choose one of {', '.join(GATED_MODES)}")
    problems: list[str | Issue] = [*verify_release(root)]
    problems += _card_problems(root)
    problems += _card_repo_problems(root, repo_id, gated)
    if problems:
        raise ReleaseRefused(
            f"{root} is not a consistent release folder; nothing was sent to the Hub:", problems
        )
    manifest = ReleaseManifest.load(root)
    if not is_version(manifest.version):
        raise ReleaseRefused(f"{root}: manifest version {manifest.version!r} is not X.Y.Z")
    files = [(f.path, f.bytes) for f in manifest.files]
    files.append((MANIFEST_NAME, (root / MANIFEST_NAME).stat().st_size))
    return PushPlan(root, repo_id, manifest.version, tuple(sorted(files)), private, message, gated)


def _card_repo_problems(folder: Path, repo_id: str, gated: str | None = None) -> list[str]:
    """The card must describe the push: its loading examples name the repository, and it
    says the repository is gated exactly when ``--gated`` gates it."""
    from spa_vl.card.content import card_settings

    settings = card_settings(folder)
    if settings is None:
        return []  # a card without our marker was not rendered by `spa-vl card`
    problems = []
    fix = f"spa-vl card {folder} --repo-id {repo_id} --gated {gated or 'no'}"
    if settings.repo_id != repo_id:
        problems.append(
            f"README.md: the card's loading examples name {settings.repo_id!r}, not {repo_id!r}; "
            f"run `{fix}` first"
        )
    if settings.gated != gated:
        said = f"the repository is gated ({settings.gated})" if settings.gated else "anyone can download it"
        asked = f"--gated {gated} gates it" if gated else "without --gated the repository is not gated"
        problems.append(
            f"README.md: the card says {said}, but {asked}; run `{fix}` first"
            + (f", or push with --gated {settings.gated}" if settings.gated else "")
        )
    return problems


def _card_problems(folder: Path) -> list[str]:
    """The card check of ``spa_vl.card.check`` (the same rules as ``spa-vl card --check``)."""
    # Imported here: the card check loads datasets and jsonschema, which `spa-vl --help` and a
    # refused --repo-id never need.
    from spa_vl.card.check import check_release

    return [str(p) for p in check_release(folder)]


# -- the push ------------------------------------------------------------------------------------
def push_release(
    plan: PushPlan,
    *,
    token: str | None = None,
    retry: RetryPolicy | None = None,
    echo: Callable[[str], None] = print,
) -> PushResult:
    """Push, tag and read back ``plan``; raise ReleaseError (with exit_code) on failure."""
    from huggingface_hub import HfApi, get_token

    token = token or get_token()
    if not token:
        raise HubFailure(
            "No Hugging Face token: set HF_TOKEN to a token with write access or run `hf auth login`."
        )
    from spa_vl.about import __version__

    api = HfApi(token=token, library_name="spa-vl", library_version=__version__)
    pusher = _Pusher(plan, api, token, retry or RetryPolicy(), echo)
    return pusher.run()


class _Pusher:
    def __init__(self, plan: PushPlan, api: Any, token: str, retry: RetryPolicy, echo: Callable):
        self.plan, self.api, self.token, self.retry = plan, api, token, retry
        self._echo = echo
        self.repo = dict(repo_id=plan.repo_id, repo_type=REPO_TYPE)

    def echo(self, text: str) -> None:
        self._echo(scrub(text, self.token))

    def run(self) -> PushResult:
        plan = self.plan
        self.step(
            "create the dataset repo",
            lambda: self.api.create_repo(private=plan.private, exist_ok=True, **self.repo),
        )
        self.ensure_access()
        tags = self.step("list the tags", lambda: self.refs()[1])
        if plan.tag in tags:
            return self.existing_tag(tags[plan.tag])
        commit, new = self.step("upload the files", self.ensure_commit)
        self.check_remote(commit, f"commit {commit[:12]} (not tagged)")
        self.step(f"create the tag {plan.tag}", lambda: self.ensure_tag(commit))
        checked = self.check_remote(plan.tag, f"tag {plan.tag}")
        echo_new = "committed" if new else "main already held these files (resumed)"
        self.echo(f"{plan.repo_id}: {echo_new}; tagged {plan.tag} = {commit[:12]}; {checked} files verified")
        return PushResult(plan.repo_id, plan.tag, commit, new, False, checked, plan.gated)

    # -- steps -----------------------------------------------------------------------------
    def refs(self) -> tuple[str | None, dict[str, str]]:
        refs = self.api.list_repo_refs(**self.repo)
        head = next((b.target_commit for b in refs.branches if b.name == "main"), None)
        return head, {t.name: t.target_commit for t in refs.tags}

    def existing_tag(self, target: str) -> PushResult:
        problems = self.step(f"read {self.plan.tag}", lambda: self.remote_problems(self.plan.tag))
        if problems:
            raise ReleaseRefused(
                f"{self.plan.tag} already exists on {self.plan.repo_id} (commit {target[:12]}) with "
                "other files; a released version never changes: build a new version instead.",
                problems,
            )
        self.echo(f"{self.plan.repo_id}: {self.plan.tag} is already released with exactly these files")
        files = len(self.plan.files)
        return PushResult(self.plan.repo_id, self.plan.tag, target, False, True, files, self.plan.gated)

    def ensure_access(self) -> None:
        """Gate the repository when asked (before any data file goes up), then read its
        gating back: it must be what the card says."""
        plan = self.plan
        if plan.gated:
            self.step(
                f"gate the repository ({plan.gated})",
                lambda: self.api.update_repo_settings(gated=plan.gated, **self.repo),
            )
            self.echo(f"{plan.repo_id}: access gated ({plan.gated}: {_GATED_WORDS[plan.gated]})")
        info = self.step("read the repository's settings", lambda: self.api.repo_info(**self.repo))
        live = getattr(info, "gated", None) or None  # False and None both mean "not gated"
        if live == plan.gated:
            return
        if plan.gated:
            raise HubFailure(
                f"{plan.repo_id} reads back as {f'gated ({live})' if live else 'not gated'} after "
                f"gating it ({plan.gated}); nothing was uploaded. Run the same command again."
            )
        raise ReleaseRefused(
            f"{plan.repo_id} is gated ({live}) on the Hub, but the card says anyone can download "
            f"it; nothing was uploaded. Render the card with `spa-vl card {plan.folder} --repo-id "
            f"{plan.repo_id} --gated {live}` and push with --gated {live}, or turn gating off in "
            "the repository's settings."
        )

    def ensure_commit(self) -> tuple[str, bool]:
        head, _ = self.refs()
        # A run that died after its commit landed must not commit again: reuse that head.
        if head is not None and not self.remote_problems(head):
            return head, False
        self.echo(f"uploading {len(self.plan.files)} files to {self.plan.repo_id} ...")
        info = self.api.upload_folder(
            folder_path=str(self.plan.folder),
            commit_message=self.plan.commit_message,
            commit_description=self.plan.message or "",
            delete_patterns="*",  # files of an older version that this one no longer has
            ignore_patterns=[".cache/*", "*/.cache/*"],  # datasets' caches; verify skips them too
            parent_commit=head,  # fail rather than mix with a concurrent push
            **self.repo,
        )
        return info.oid, True

    def ensure_tag(self, commit: str) -> None:
        from huggingface_hub.errors import HfHubHTTPError

        try:
            self.api.create_tag(
                tag=self.plan.tag, revision=commit, tag_message=self.plan.commit_message, **self.repo
            )
        except HfHubHTTPError as exc:
            if http_status(exc) != 409:
                raise
            # 409: the tag exists; fine if an earlier attempt made it on this very commit.
            target = self.refs()[1].get(self.plan.tag)
            if target != commit:
                raise ReleaseRefused(
                    f"{self.plan.tag} was created on {self.plan.repo_id} at commit "
                    f"{str(target)[:12]} by someone else during this push; not changed."
                ) from None

    def check_remote(self, revision: str, what: str) -> int:
        problems = self.step(f"read back {what}", lambda: self.remote_problems(revision))
        if problems:
            raise ReleaseRefused(f"{self.plan.repo_id} {what} does not match the manifest:", problems)
        return len(self.plan.files)

    def remote_problems(self, revision: str) -> list[str]:
        """Compare the files at ``revision`` with the folder: sizes, sha256 (LFS), git blob id."""
        from huggingface_hub.hf_api import RepoFile
        from huggingface_hub.utils.sha import git_hash

        tree = self.api.list_repo_tree(revision=revision, recursive=True, **self.repo)
        remote = {f.path: f for f in tree if isinstance(f, RepoFile)}
        manifest = ReleaseManifest.load(self.plan.folder)
        expected = {f.path: (f.bytes, f.sha256) for f in manifest.files}
        own = self.plan.folder / MANIFEST_NAME
        expected[MANIFEST_NAME] = (own.stat().st_size, sha256_file(own))
        problems = []
        for path, (size, sha) in sorted(expected.items()):
            got = remote.get(path)
            if got is None:
                problems.append(f"{path}: missing on the Hub")
            elif got.size != size:
                problems.append(f"{path}: {got.size} bytes on the Hub, {size} in the release")
            elif got.lfs is not None and got.lfs.sha256 != sha:
                problems.append(f"{path}: sha256 {got.lfs.sha256[:12]}… on the Hub, {sha[:12]}…")
            elif got.lfs is None and got.blob_id != git_hash((self.plan.folder / path).read_bytes()):
                problems.append(f"{path}: content on the Hub differs (git blob {got.blob_id[:12]}…)")
        problems += [
            f"{p}: on the Hub, not in the release"
            for p in sorted(remote)
            if p not in expected and p not in HUB_OWNED
        ]
        return problems

    # -- retries and errors -------------------------------------------------------------------
    def step(self, what: str, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return fn()
            except ReleaseError:
                raise
            except Exception as exc:
                if offline(exc):  # retrying cannot help: huggingface_hub refuses to connect
                    raise HubFailure(
                        f"Could not {what} on {self.plan.repo_id}: {HUB_UNREACHABLE} "
                        "(HF_HUB_OFFLINE is set); unset it to push."
                    ) from None
                if not transient(exc):
                    raise self.failure(what, exc) from None
                if attempt == self.retry.attempts:
                    unreachable = f"{HUB_UNREACHABLE}; " if is_network_failure(exc) else ""
                    raise HubFailure(
                        f"The Hub did not complete '{what}' on {self.plan.repo_id} after {attempt} "
                        f"attempts ({unreachable}last: {scrub(reason(exc), self.token)}); run the "
                        "same command again to resume: it reuses what already landed and never "
                        "commits or tags twice."
                    ) from None
                delay = self.retry.delay(attempt, retry_after(exc))
                self.echo(f"{what}: {reason(exc)}; retry {attempt + 1}/{self.retry.attempts} in {delay:.1f}s")
                time.sleep(delay)
        raise AssertionError("unreachable")

    def failure(self, what: str, exc: BaseException) -> ReleaseError:
        repo, status = self.plan.repo_id, http_status(exc)
        sentences = {
            401: "The Hub rejected the token (401): set HF_TOKEN to a valid token with write access "
            "or run `hf auth login`.",
            403: f"The token may not write to {repo} (403): use a token with write access to the "
            f"'{repo.split('/')[0]}' namespace.",
            404: f"{repo} was not found on the Hub (404): check --repo-id and that the token's "
            "account can see that namespace.",
            409: f"The Hub reported a conflict on {repo} (409) while trying to {what}: it changed "
            "during this push; run the same command again.",
            412: f"main of {repo} moved while trying to {what} (412): someone else pushed; run the "
            "same command again.",
        }
        if status in sentences:
            return HubFailure(sentences[status])
        detail = scrub(reason(exc), self.token)
        return HubFailure(f"Could not {what} on {repo}: {detail}")


def token_source() -> str:
    """Where a push would take its token from, without reading it or touching the network."""
    from huggingface_hub import constants

    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "HF_TOKEN"
    if Path(constants.HF_TOKEN_PATH).is_file():
        return "the saved login"
    return "none found: set HF_TOKEN or run `hf auth login` before pushing"
