"""MobilityData's ERRORs about how a feed is packed and written: GTFS files in a subfolder
of the zip, and language codes that are not BCP 47. Each case is compared with the
gtfs-guru oracle code by code; where gtfs-guru departs from the Java gtfs-validator we
follow Java and keep gtfs-guru's count with the reason."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from interlock.components.gtfs_schedule.langtag import language_ok
from interlock.components.gtfs_schedule.notices import SEVERITIES
from tests.gtfs_mutate import BASE, Case, check, oracle, ours

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

FEED_INFO = (
    "feed_publisher_name,feed_publisher_url,feed_lang,default_lang,feed_start_date,"
    "feed_end_date,feed_version,feed_contact_email\n"
)
JAVA_LANG = (
    "Java's Locale.Builder.setLanguageTag refuses a tag that is not well-formed BCP 47; "
    "gtfs-guru takes any text"
)
JAVA_FOLDER = (
    "Java's GtfsInput looks for GTFS files only under a folder entry of the zip; gtfs-guru "
    "looks at the paths alone"
)


def feed_info(lang: str, default: str = "") -> dict[str, str | None]:
    row = f"P,http://p.example,{lang},{default},20250101,20261231,1,info@p.example\n"
    return {"feed_info.txt": FEED_INFO + row}


CASES = [
    Case("language_tags", feed_info("zh-Hant-TW", "es-419"), {"invalid_language_code": 0}),
    # Well-formed though not a registered language: Java does not look it up.
    Case("unregistered_language", feed_info("english"), {"invalid_language_code": 0}),
    Case(
        "malformed_languages",
        feed_info("en_US", "en-"),
        {"invalid_language_code": 2},
        {"invalid_language_code": 0},
        JAVA_LANG,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_language_matches_the_reference(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)


@pytest.mark.parametrize(
    "tag",
    ["en", "EN-au", "gsw-u-sd-chzh", "de-DE-1996", "en-US-x-twain", "x-private", "i-klingon"],
)
def test_well_formed_language_tags(tag: str) -> None:
    assert language_ok(tag)


@pytest.mark.parametrize("tag", ["e!", "en_US", "-en", "en-x", "en-a", "a", "abcdefghi", "en--US"])
def test_malformed_language_tags(tag: str) -> None:
    assert not language_ok(tag)


def _zip(path: Path, extra: dict[str, str], folders: tuple[str, ...]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in BASE.items():
            zf.writestr(name, body)
        for folder in folders:
            zf.writestr(zipfile.ZipInfo(folder), "")  # a folder entry, as zip tools write
        for name, body in extra.items():
            zf.writestr(name, body)
    return path


@pytest.mark.parametrize(
    ("name", "extra", "folders", "want", "guru"),
    [
        ("gtfs_file_in_folder", {"old/stops.txt": BASE["stops.txt"]}, ("old/",), 1, 1),
        ("other_file_in_folder", {"docs/readme.txt": "hello\n"}, ("docs/",), 0, 0),
        ("no_folder_entry", {"old/stops.txt": BASE["stops.txt"]}, (), 0, 1),
    ],
)
def test_files_in_subfolder(
    name: str,
    extra: dict[str, str],
    folders: tuple[str, ...],
    want: int,
    guru: int,
    tmp_path: Path,
) -> None:
    feed = _zip(tmp_path / f"{name}.zip", extra, folders)
    mine, _ = ours(feed, tmp_path)
    code = "invalid_input_files_in_subfolder"
    assert mine.get(code, 0) == want
    everything = oracle(feed, tmp_path)
    # The one departure (JAVA_FOLDER): no folder entry, no notice in Java.
    assert everything.get(code, 0) == guru, JAVA_FOLDER
    theirs = {c: n for c, n in everything.items() if c in SEVERITIES and c != code}
    assert {c: n for c, n in mine.items() if c != code} == theirs
