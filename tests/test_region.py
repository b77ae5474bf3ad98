"""Region data: the shipped voivodeship, matching, and a replaceable file."""

from __future__ import annotations

from pathlib import Path

import pytest

from infranet.region import UnknownDistrict, load_region


@pytest.fixture(scope="module")
def region():
    return load_region()


def test_shipped_region_has_three_subregions_and_21_powiaty(region) -> None:
    assert region.name == "województwo warmińsko-mazurskie"
    assert [s.code for s in region.subregions] == ["PL621", "PL622", "PL623"]
    assert len(region.powiaty) == 21
    olsztynski = region.match("podregion olsztyński")
    assert sorted(p.code for p in olsztynski.children) == [
        "2801", "2808", "2809", "2810", "2811", "2814", "2817", "2862"]


@pytest.mark.parametrize("query", ["ostrodzki", "Ostródzki", "2815", "OSTRÓDZKI", " ostródzki "])
def test_powiat_matches_with_or_without_diacritics_and_by_teryt(region, query: str) -> None:
    assert region.match(query).code == "2815"


@pytest.mark.parametrize("query,code", [("m. Elbląg", "2861"), ("Elbląg", "2861"),
                                        ("elblag", "2861"), ("miasto Olsztyn", "2862"),
                                        ("gizycki", "2806"), ("Węgorzewski", "2819")])
def test_cities_and_names_with_l_stroke(region, query: str, code: str) -> None:
    assert region.match(query).code == code


def test_powiat_wins_over_subregion_of_the_same_name(region) -> None:
    assert region.match("elbląski").kind == "powiat"
    assert region.match("podregion elbląski").kind == "subregion"
    assert region.match("PL621").kind == "subregion"
    assert region.match("cały region") is region.root


def test_unknown_district_lists_close_matches(region) -> None:
    with pytest.raises(UnknownDistrict) as err:
        region.match("ostrodski")
    assert "ostródzki" in str(err.value)
    assert err.value.suggestions[0].code == "2815"


def test_overlap_relations(region) -> None:
    ostroda, ilawa, elk = region.match("2815"), region.match("2807"), region.match("2805")
    sub = region.match("PL621")
    assert ostroda.overlaps(sub) and sub.overlaps(ilawa)
    assert not ostroda.overlaps(ilawa)
    assert not elk.overlaps(sub)
    assert region.root.overlaps(elk)


def test_another_region_file_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "pomorskie.toml"
    path.write_text(
        'name = "województwo pomorskie"\nteryt = "22"\n'
        '[[subregions]]\nname = "podregion trójmiejski"\ncode = "PL633"\n'
        'powiaty = [{ name = "m. Gdańsk", teryt = "2261" }, { name = "m. Gdynia", teryt = "2262" }]\n',
        encoding="utf-8")
    region = load_region(path)
    assert region.match("gdansk").code == "2261"
    assert region.match("Gdańsk").parent.slug == "podregion-trojmiejski"
    with pytest.raises(UnknownDistrict):
        region.match("ostródzki")


def test_broken_region_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.toml"):
        load_region(path)
