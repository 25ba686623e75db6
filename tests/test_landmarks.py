"""`.pts` read/write: the 1-based file convention and the errors on bad files."""
from __future__ import annotations

import numpy as np
import pytest

from facemask.data.ibug68 import PtsError, read_pts, write_pts


def pts_text(rows: list[str], n_points: int | None = None) -> str:
    n = len(rows) if n_points is None else n_points
    return "version: 1\nn_points:  " + str(n) + "\n{\n" + "\n".join(rows) + "\n}\n"


def test_read_subtracts_one(tmp_path):
    # file point i is (i + 1, 2 i + 1) -> 0-based (i, 2 i); the first line "1 1" is pixel (0, 0)
    rows = ["1 1"] + [f"{i + 1} {2 * i + 1}" for i in range(1, 68)]
    path = tmp_path / "000001.pts"
    path.write_text(pts_text(rows))
    pts = read_pts(path)
    assert pts.shape == (68, 2) and pts.dtype == np.float64
    assert pts[0].tolist() == [0.0, 0.0]
    assert pts[67].tolist() == [67.0, 134.0]
    np.testing.assert_array_equal(pts[:, 0], np.arange(68))
    np.testing.assert_array_equal(pts[:, 1], 2 * np.arange(68))


def test_write_adds_one_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    pts = np.round(rng.uniform(0, 300, size=(68, 2)), 3)
    pts[0] = (0.0, 0.0)
    pts[1] = (12.25, 7.5)
    path = tmp_path / "a.pts"
    write_pts(path, pts)
    lines = path.read_text().splitlines()
    assert lines[:3] == ["version: 1", "n_points:  68", "{"] and lines[-1] == "}"
    assert lines[3] == "1.000 1.000"
    assert lines[4] == "13.250 8.500"
    np.testing.assert_allclose(read_pts(path), pts, atol=5e-4)


def test_real_file_layout_with_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "crlf.pts"
    path.write_bytes(pts_text([f"{i}.5 3" for i in range(1, 69)]).replace("\n", "\r\n\r\n").encode())
    assert read_pts(path)[0].tolist() == [0.5, 2.0]


GOOD = [f"{i + 1} {i + 1}" for i in range(68)]


@pytest.mark.parametrize(
    "text, reason",
    [
        (pts_text(GOOD[:67]), "expected 68 points, found 67"),
        (pts_text(GOOD + ["1 1"]), "expected 68 points, found 69"),
        (pts_text(GOOD, n_points=66), "header says n_points 66 but 68 points follow"),
        (pts_text(GOOD[:10] + ["12.0 abc"] + GOOD[11:]), "point 11 is not two numbers"),
        (pts_text(GOOD[:5] + ["3 4 5"] + GOOD[6:]), "point 6 is not two numbers"),
        (pts_text(GOOD[:2] + ["nan 4"] + GOOD[3:]), "point 3 is not finite"),
        (pts_text(GOOD[:2] + ["4 inf"] + GOOD[3:]), "point 3 is not finite"),
        ("version: 1\nn_points: 68\n" + "\n".join(GOOD), "no '{' ... '}' block"),
        ("", "no '{' ... '}' block"),
    ],
)
def test_bad_file_names_file_and_reason(tmp_path, text, reason):
    path = tmp_path / "000042.pts"
    path.write_text(text)
    with pytest.raises(PtsError) as e:
        read_pts(path)
    assert str(path) in str(e.value) and reason in str(e.value)


def test_unreadable_file_names_it(tmp_path):
    with pytest.raises(PtsError, match="missing.pts: cannot read"):
        read_pts(tmp_path / "missing.pts")
    binary = tmp_path / "binary.pts"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PtsError, match="binary.pts: cannot read"):
        read_pts(binary)


def test_write_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        write_pts(tmp_path / "x.pts", np.zeros((68, 3)))
