"""Region data: the shipped voivodeship, matching, and a replaceable file."""

from __future__ import annotations

from pathlib import Path

import pytest

from infranet.region import AmbiguousDistrict, UnknownDistrict, fold, load_region


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


@pytest.mark.parametrize("query,code", [("m. Elbląg", "2861"), ("miasto Elbląg", "2861"),
                                        ("m elblag", "2861"), ("miasto Olsztyn", "2862"),
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


@pytest.mark.parametrize("query,code", [
    ("powiat elbląski", "2804"), ("pow. ełcki", "2805"), ("Powiat Ostródzki", "2815"),
    ("m. Olsztyn", "2862"), ("powiat m. Olsztyn", "2862"), ("M. OLSZTYN", "2862"),
    ("Ełk", "2805"), ("Giżycko", "2806"), ("nowe miasto lubawskie", "2812")])
def test_the_words_people_use_for_a_powiat(region, query: str, code: str) -> None:
    """"powiat X", "pow. X", "m. X", and a powiat's seat ("Ełk") name the district."""
    assert region.match(query).code == code


@pytest.mark.parametrize("query", ["Olsztyn", "olsztyn", "Elbląg"])
def test_a_city_that_is_also_a_powiat_seat_is_ambiguous(region, query: str) -> None:
    """"Olsztyn" is the city (a powiat of its own) or the powiat run from it: ask."""
    with pytest.raises(AmbiguousDistrict) as err:
        region.match(query)
    city, powiat = err.value.suggestions
    assert city.name.startswith("m. ") and powiat.seat and fold(powiat.seat) == fold(query)
    assert not err.value.outside


@pytest.mark.parametrize("query", ["Kraków", "Warszawa", "Gdańsk", "Łódź"])
def test_a_place_outside_the_region_offers_no_lookalike(region, query: str) -> None:
    """No "did you mean Mrągowski?" for Kraków: it is simply not in the region."""
    with pytest.raises(UnknownDistrict) as err:
        region.match(query)
    assert err.value.outside and err.value.suggestions == []


@pytest.mark.parametrize("a,b", [("Тренінг для громад", "Семінар для молоді"),
                                 ("ورشة عمل", "اجتماع المنظمات"), ("🎉🎉", "📅")])
def test_fold_keeps_the_letters_of_every_script(a: str, b: str) -> None:
    """Titles in Ukrainian or Arabic fold to their own letters (not ""), so two different
    titles stay different; symbols alone fold to "" (which never counts as equal)."""
    if a.startswith(("🎉",)):
        assert fold(a) == fold(b) == ""
    else:
        assert fold(a) and fold(b) and fold(a) != fold(b)
    assert fold("ТРЕНІНГ, для громад!") == fold("тренінг для громад")
    assert fold("Ostródzki") == "ostrodzki"


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
    assert region.match("Gdynia").code == "2262"  # no seats named: a city is itself


def test_broken_region_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('name = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.toml"):
        load_region(path)


def test_the_shipped_region_has_residents_and_boundaries_for_every_powiat(region) -> None:
    import json

    assert region.facts.population_year and "GUS" in region.facts.population_source
    assert all(p.population and p.population > 10_000 for p in region.powiaty)
    assert len({p.tile for p in region.powiaty}) == 21  # the tile map has no overlaps
    assert region.facts.boundaries is not None and "PRG" in region.facts.boundaries_source
    shapes = json.loads(region.facts.boundaries.read_text(encoding="utf-8"))["features"]
    assert sorted(f["properties"]["teryt"] for f in shapes) == sorted(p.code for p in region.powiaty)


def test_a_region_file_without_figures_or_boundaries_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text('name = "w"\nteryt = "22"\n[[subregions]]\nname = "s"\ncode = "PL633"\n'
                    'powiaty = [{ name = "m. Gdańsk", teryt = "2261" }]\n', encoding="utf-8")
    region = load_region(path)
    assert region.facts.boundaries is None and region.powiaty[0].population is None
    path.write_text(path.read_text(encoding="utf-8").replace(
        'teryt = "22"\n', 'teryt = "22"\nboundaries = "missing.geojson"\n'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing\.geojson"):
        load_region(path)
