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
# Folders (os.pathsep-separated) holding BEIR data sets by name, looked in first.
DATA_VARIABLE = "TF_DUALENC_DATA"
# A source checkout keeps the shared data sets beside the repository (<repo>/../shared/data).
CHECKOUT_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "..", "shared", "data")


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
            raise DownloadError(
                f"Could not download BEIR data set {name!r} from {url} into {final}: {error}. Offline, put its BEIR folder "
                f"(corpus.jsonl, queries.jsonl, qrels/) at {final}, or under a folder named by {DATA_VARIABLE}, or give "
                "its path as `data`.") from None
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


def dataset_search_dirs(config_dir=None):
    """Where a BEIR data set is looked for by name, in order: the folders of TF_DUALENC_DATA, the config file's folder
    (`config_dir`), and a source checkout's `../shared/data`; then the download cache. Never the working directory, so
    a command finds the same data from any folder."""
    dirs = [d for d in os.environ.get(DATA_VARIABLE, "").split(os.pathsep) if d]
    if config_dir:
        dirs.append(config_dir)
    return dirs + [os.path.normpath(CHECKOUT_DATA_DIR)]


def resolve_beir_dataset(name, *, search_dirs=None, cache_dir=None, base_url=None, print_fn=print):
    """The folder of BEIR data set `name`: the first `<search_dir>/<name>` with the BEIR layout (`search_dirs`
    default: `dataset_search_dirs()`), else the download cache's copy, else a download (`download_beir`; `cache_dir`
    and `base_url` default to DEFAULT_CACHE_DIR and BEIR_BASE_URL)."""
    for directory in dataset_search_dirs() if search_dirs is None else search_dirs:
        candidate = os.path.join(directory, name)
        if _is_beir_folder(candidate):
            return os.path.abspath(candidate)
    return download_beir(name, DEFAULT_CACHE_DIR if cache_dir is None else cache_dir,
                         base_url=BEIR_BASE_URL if base_url is None else base_url, print_fn=print_fn)
