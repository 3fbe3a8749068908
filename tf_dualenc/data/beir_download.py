"""BEIR data sets by name: a local copy when there is one, else BEIR's public zip, downloaded and unpacked atomically."""

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile

BEIR_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "tf_dualenc", "beir")
REQUIRED_FILES = ("corpus.jsonl", "queries.jsonl")


class DownloadError(RuntimeError):
    """A BEIR download failed or gave an archive without the BEIR layout; the message names the URL."""


def _is_beir_folder(path):
    return all(os.path.isfile(os.path.join(path, name)) for name in REQUIRED_FILES) and os.path.isdir(os.path.join(path, "qrels"))


def download_beir(name, cache_dir=DEFAULT_CACHE_DIR, *, base_url=BEIR_BASE_URL, timeout=60.0, print_fn=print):
    """Downloads `<base_url>/<name>.zip` and unpacks it to `<cache_dir>/<name>/`; returns that folder.

    An existing complete folder is reused. The zip is fetched to a temporary file, checked (zip integrity and the
    BEIR layout: corpus.jsonl, queries.jsonl, qrels/), unpacked into a temporary folder and renamed into place, so
    an interrupted download never leaves a folder that looks complete.

    Args:
        name: a BEIR data set name, e.g. "scifact", "nfcorpus", "fiqa".
        cache_dir: where data sets are kept (`~` is expanded).
        base_url: BEIR's public address (or a mirror / local file server).
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"BEIR data set name {name!r} is not a plain name (e.g. 'scifact').")
    cache_dir = os.path.expanduser(cache_dir)
    final = os.path.join(cache_dir, name)
    if _is_beir_folder(final):
        return final
    os.makedirs(cache_dir, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    work = tempfile.mkdtemp(prefix=f".{name}-download-", dir=cache_dir)
    try:
        archive = os.path.join(work, f"{name}.zip")
        print_fn(f"downloading {url}")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as f:
                shutil.copyfileobj(response, f, 1 << 20)
        except (urllib.error.URLError, OSError) as error:
            raise DownloadError(f"Could not download BEIR data set {name!r} from {url}: {error}") from error
        try:
            with zipfile.ZipFile(archive) as z:
                broken = z.testzip()
                if broken is not None:
                    raise DownloadError(f"{url}: corrupt member {broken!r} in the archive.")
                unpacked = os.path.join(work, "unpacked")
                z.extractall(unpacked)
        except zipfile.BadZipFile as error:
            raise DownloadError(f"{url} is not a valid zip archive: {error}") from error
        # BEIR zips hold one top folder named after the set; accept a flat archive too.
        candidates = [os.path.join(unpacked, name), unpacked]
        folder = next((c for c in candidates if _is_beir_folder(c)), None)
        if folder is None:
            raise DownloadError(f"{url}: the archive has no BEIR layout ({', '.join(REQUIRED_FILES)} and qrels/).")
        if os.path.exists(final):
            shutil.rmtree(final)  # an incomplete folder from elsewhere; the new one replaces it whole
        os.replace(folder, final)
        print_fn(f"BEIR {name}: {final}")
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def resolve_beir_dataset(name, *, search_dirs=(os.path.join("..", "shared", "data"),), cache_dir=DEFAULT_CACHE_DIR,
                         base_url=BEIR_BASE_URL, print_fn=print):
    """The folder of BEIR data set `name`: the first `<search_dir>/<name>` with the BEIR layout, else a download."""
    for directory in search_dirs:
        candidate = os.path.join(directory, name)
        if _is_beir_folder(candidate):
            return os.path.abspath(candidate)
    return download_beir(name, cache_dir, base_url=base_url, print_fn=print_fn)
