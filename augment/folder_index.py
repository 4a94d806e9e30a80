"""What `prepare` may read from a data folder, as one small file that DVC can hash.

DVC hashes a folder dependency by opening every file under it, following links, before the stage
runs. A FIFO or a link to /dev/zero there hangs it. A broken link, a link loop, an unreadable file or
a file name that is not UTF-8 stops it with an error that names no stage. The data contract says such
files are listed in rejected.csv and are not fatal. So `prepare` depends on this index instead of on
the folder.

`index_domains` walks the two domain folders under the data root. It lists every entry: folders,
files with their size and sha256, links with where they point, and anything else by its kind. It
opens regular files only, and only inside the root. Links to files inside the root are listed with
their target's hash, and links to folders inside the root are walked, because `prepare` may read
through them. So the index changes whenever what `prepare` reads changes. Only paths relative to the
root, sizes and hashes go in, so two machines with the same images write the same index. A stat
cache (size, mtime, inode) spares rehashing unchanged files, as DVC's own state database does.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

_KINDS = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device", stat.S_IFBLK: "block device"}


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    return _KINDS.get(stat.S_IFMT(mode), "other")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class _Walk:
    def __init__(self, root: Path, cache: dict):
        self.root = os.path.realpath(root)
        self.old_cache, self.cache = cache, {}
        self.entries: list[dict] = []
        self.walked: set[tuple[int, int]] = set()  # (device, inode) of every folder walked: no loop twice

    def rel(self, path: str) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def add(self, path: str, **fields) -> None:
        self.entries.append({"path": self.rel(path), **fields})

    def sha256(self, path: str, st: os.stat_result) -> str:
        """The hash of a regular file whose stat is `st` (after links); from the cache if unchanged."""
        key = os.path.realpath(path)
        # ctime too: an editor that rewrites a file in place and puts its mtime back (`exiftool -P`, `touch -r`)
        # keeps size, mtime, inode and device; the kernel still moves the ctime, which nothing can set.
        sig = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        old = self.old_cache.get(key)
        if old and old[:-1] == sig:
            digest = old[-1]
        else:
            h = hashlib.sha256()
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced since its stat: not read
                    raise OSError("no longer a regular file")
                while chunk := os.read(fd, 1 << 20):
                    h.update(chunk)
            finally:
                os.close(fd)
            digest = h.hexdigest()
        self.cache[key] = sig + [digest]
        return digest

    def file(self, path: str, st: os.stat_result, **fields) -> None:
        try:
            self.add(path, kind="file", **fields, size=st.st_size, sha256=self.sha256(path, st))
        except OSError as exc:
            self.add(path, kind="file", **fields, size=st.st_size, error=exc.strerror or str(exc))

    def folder(self, path: str, st: os.stat_result, depth: int) -> None:
        if (st.st_dev, st.st_ino) in self.walked:
            return
        self.walked.add((st.st_dev, st.st_ino))
        try:
            names = os.listdir(path)
        except OSError as exc:
            self.add(path, kind="folder", error=exc.strerror or str(exc))
            return
        for name in sorted(names, key=os.fsencode):
            self.entry(os.path.join(path, name), depth + 1)

    def entry(self, path: str, depth: int = 0) -> None:
        """`depth` 0: a domain folder, 1: a split (train/, test/), 2 on: what they hold."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.add(path, kind="missing")
            return
        except OSError as exc:
            self.add(path, kind="unknown", error=exc.strerror or str(exc))
            return
        if stat.S_ISLNK(st.st_mode):
            self.link(path, depth)
        elif stat.S_ISDIR(st.st_mode):
            self.add(path, kind="folder")
            self.folder(path, st, depth)
        elif stat.S_ISREG(st.st_mode):
            self.file(path, st)
        else:
            self.add(path, kind=_kind(st.st_mode))

    def link(self, path: str, depth: int) -> None:
        """`prepare` reads through a linked domain folder wherever it points (it stops at a linked
        split, which is walked here too: listing more than prepare reads costs a re-run at most), and
        below them through links to files inside the root only; a link to / is never walked."""
        to = os.readlink(path)
        if depth > 1 and not _inside(os.path.realpath(path), self.root):
            self.add(path, kind="link", to=to, target="outside the data root")
            return
        try:
            st = os.stat(path)
        except OSError as exc:  # broken, or a loop
            self.add(path, kind="link", to=to, error=exc.strerror or str(exc))
            return
        if stat.S_ISREG(st.st_mode):
            self.file(path, st, to=to)
        elif stat.S_ISDIR(st.st_mode):
            self.add(path, kind="link", to=to, target="folder")
            self.folder(path, st, depth)
        else:
            self.add(path, kind="link", to=to, target=_kind(st.st_mode))


def index_domains(root: str | Path, domains: list[str], cache_file: str | Path | None = None) -> list[dict]:
    """Every entry under `root`/<domain> for each domain, sorted by path; see the module docstring.

    A missing root or domain folder is an entry too (`prepare` then stops with its own message).
    `cache_file`: where the stat cache lives between runs (read if present, rewritten)."""
    cache = {}
    if cache_file is not None and Path(cache_file).is_file():
        try:
            cache = json.loads(Path(cache_file).read_text())
        except (OSError, ValueError):
            cache = {}
    walk = _Walk(Path(root), cache if isinstance(cache, dict) else {})
    for domain in domains:
        walk.entry(os.path.join(walk.root, domain))
    if cache_file is not None:
        from augment.io import atomic_path

        with atomic_path(cache_file) as tmp:
            tmp.write_text(json.dumps(walk.cache))
    return walk.entries
