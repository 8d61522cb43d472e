"""The harm taxonomy: the frozen ClassLabel order, parents, slugs, configs, lookups, and a
taxonomy file that is not a proper 6/15/53 tree failing loudly.

The expected names below are typed from the published dataset (the SPA-VL paper's taxonomy and
the upstream `sqrti/SPA-VL` image paths), never computed: label ids in
released data depend on this order, so a change here is a breaking change of the data.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from features_contract import CONFIGS as CONTRACT_CONFIGS
from spa_vl import CONFIGS
from spa_vl.taxonomy import Taxonomy, TaxonomyError, load_taxonomy

TAXONOMY_JSON = Path(__file__).resolve().parents[1] / "schema" / "taxonomy.json"

DOMAINS = [
    "Representation & ToxicityHarms",
    "Misinformation Harms",
    "Information & Safety Harms",
    "Malicious Use",
    "Human Autonomy & IntegrityHarms",
    "Socioeconomic Harms",
]

CATEGORIES = [
    "Toxic",
    "Unfair",
    "Erosion of trust in public information",
    "false beliefs",
    "dangerous information",
    "Privacy",
    "Illegal activities",
    "Influence operations",
    "Security threats",
    "Defamation",
    "Fraud or deceptive action",
    "Persuasion and manipulation",
    "Violation of personal property",
    "Risky financial practices",
    "Trade and compliance",
]

SUBCATEGORIES = [
    # Representation & ToxicityHarms / Toxic
    "bully",
    "harass",
    "hate",
    "insult",
    "terrorism",
    "threaten",
    "violent",
    # Representation & ToxicityHarms / Unfair
    "ageism",
    "disablity discrimination",
    "geographical discrimination",
    "racial",
    "religion",
    "sexism",
    # Misinformation Harms / Erosion of trust in public information
    "illegal drugs",
    "medical",
    # Misinformation Harms / false beliefs
    "fake science",
    "historical revisionism",
    "radicalization",
    # Information & Safety Harms / dangerous information
    "financial data",
    "government secret",
    # Information & Safety Harms / Privacy
    "personal privacy",
    # Malicious Use / Illegal activities
    "illegal law advice",
    "theft",
    "traffic and driving offenses",
    "drug-related crimes",
    "environmental crimes",
    "financial crimes",
    # Malicious Use / Influence operations
    "campaign materials",
    "illegitimate surveillance",
    "manipulation of public opinion",
    # Malicious Use / Security threats
    "biological and chemical harms",
    "cyber",
    "malware",
    "weapon",
    # Malicious Use / Defamation
    "defamation",
    # Malicious Use / Fraud or deceptive action
    "academic dishonesty",
    "disinformation",
    "fake news",
    "financial fraud",
    "pseudo-pharmaceuticals",
    "rumors",
    "scamns",
    "spam information",
    # Human Autonomy & IntegrityHarms / Persuasion and manipulation
    "physical harm",
    "psychological manipulation",
    # Human Autonomy & IntegrityHarms / Violation of personal property
    "copyright infringement",
    "forge identity",
    "plagiarism",
    # Socioeconomic Harms / Risky financial practices
    "gamble",
    "multi-level marketing",
    "paypal lending",
    # Socioeconomic Harms / Trade and compliance
    "labor issues",
    "trade affairs",
]

CATEGORY_PARENT = {
    "Toxic": "Representation & ToxicityHarms",
    "Unfair": "Representation & ToxicityHarms",
    "Erosion of trust in public information": "Misinformation Harms",
    "false beliefs": "Misinformation Harms",
    "dangerous information": "Information & Safety Harms",
    "Privacy": "Information & Safety Harms",
    "Illegal activities": "Malicious Use",
    "Influence operations": "Malicious Use",
    "Security threats": "Malicious Use",
    "Defamation": "Malicious Use",
    "Fraud or deceptive action": "Malicious Use",
    "Persuasion and manipulation": "Human Autonomy & IntegrityHarms",
    "Violation of personal property": "Human Autonomy & IntegrityHarms",
    "Risky financial practices": "Socioeconomic Harms",
    "Trade and compliance": "Socioeconomic Harms",
}

# Subcategories per category, in order (the facts file's tree).
CHILDREN = {
    "Toxic": ["bully", "harass", "hate", "insult", "terrorism", "threaten", "violent"],
    "Unfair": [
        "ageism",
        "disablity discrimination",
        "geographical discrimination",
        "racial",
        "religion",
        "sexism",
    ],
    "Erosion of trust in public information": ["illegal drugs", "medical"],
    "false beliefs": ["fake science", "historical revisionism", "radicalization"],
    "dangerous information": ["financial data", "government secret"],
    "Privacy": ["personal privacy"],
    "Illegal activities": [
        "illegal law advice",
        "theft",
        "traffic and driving offenses",
        "drug-related crimes",
        "environmental crimes",
        "financial crimes",
    ],
    "Influence operations": [
        "campaign materials",
        "illegitimate surveillance",
        "manipulation of public opinion",
    ],
    "Security threats": ["biological and chemical harms", "cyber", "malware", "weapon"],
    "Defamation": ["defamation"],
    "Fraud or deceptive action": [
        "academic dishonesty",
        "disinformation",
        "fake news",
        "financial fraud",
        "pseudo-pharmaceuticals",
        "rumors",
        "scamns",
        "spam information",
    ],
    "Persuasion and manipulation": ["physical harm", "psychological manipulation"],
    "Violation of personal property": ["copyright infringement", "forge identity", "plagiarism"],
    "Risky financial practices": ["gamble", "multi-level marketing", "paypal lending"],
    "Trade and compliance": ["labor issues", "trade affairs"],
}

CONFIG_NAMES = list(CONTRACT_CONFIGS)


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return load_taxonomy()


# -- the frozen order -----------------------------------------------------------------------


def test_domain_order_is_frozen(tax: Taxonomy) -> None:
    assert tax.names("domain") == DOMAINS


def test_category_order_is_frozen(tax: Taxonomy) -> None:
    assert tax.names("category") == CATEGORIES


def test_subcategory_order_is_frozen(tax: Taxonomy) -> None:
    assert tax.names("subcategory") == SUBCATEGORIES


def test_sizes_are_6_15_53() -> None:
    assert (len(DOMAINS), len(CATEGORIES), len(SUBCATEGORIES)) == (6, 15, 53)
    assert len(set(SUBCATEGORIES)) == 53


def test_subcategories_per_domain_are_13_5_3_22_5_5(tax: Taxonomy) -> None:
    counts = [sum(tax.path(s)[0] == d for s in SUBCATEGORIES) for d in DOMAINS]
    assert counts == [13, 5, 3, 22, 5, 5]


def test_data_typos_are_kept(tax: Taxonomy) -> None:
    for level, name in [
        ("domain", "Representation & ToxicityHarms"),
        ("domain", "Human Autonomy & IntegrityHarms"),
        ("category", "false beliefs"),
        ("category", "dangerous information"),
        ("subcategory", "disablity discrimination"),
        ("subcategory", "scamns"),
    ]:
        assert tax.contains(level, name)
    assert not tax.contains("subcategory", "disability discrimination")
    assert not tax.contains("subcategory", "scams")
    assert not tax.contains("domain", "Representation & Toxicity Harms")


@pytest.mark.parametrize(
    ("level", "name", "index"),
    [
        ("domain", "Representation & ToxicityHarms", 0),
        ("domain", "Socioeconomic Harms", 5),
        ("category", "Toxic", 0),
        ("category", "Defamation", 9),
        ("category", "Trade and compliance", 14),
        ("subcategory", "bully", 0),
        ("subcategory", "personal privacy", 20),
        ("subcategory", "defamation", 34),
        ("subcategory", "scamns", 41),
        ("subcategory", "trade affairs", 52),
    ],
)
def test_classlabel_ids(tax: Taxonomy, level: str, name: str, index: int) -> None:
    assert tax.index(level, name) == index


def test_index_of_none_is_minus_one(tax: Taxonomy) -> None:
    assert tax.index("subcategory", None) == -1


def test_index_of_unknown_name_raises(tax: Taxonomy) -> None:
    with pytest.raises(KeyError):
        tax.index("subcategory", "scams")


# -- parents and lookups ---------------------------------------------------------------------


def test_parents_of_categories(tax: Taxonomy) -> None:
    assert {c: tax.parent("category", c) for c in CATEGORIES} == CATEGORY_PARENT
    for d in DOMAINS:
        assert tax.parent("domain", d) is None


def test_parents_and_children_of_subcategories(tax: Taxonomy) -> None:
    for category, subs in CHILDREN.items():
        assert tax.children("category", category) == subs
        for s in subs:
            assert tax.parent("subcategory", s) == category
    assert [s for subs in CHILDREN.values() for s in subs] == SUBCATEGORIES


def test_children_of_a_domain(tax: Taxonomy) -> None:
    assert tax.children("domain", "Information & Safety Harms") == [
        "dangerous information",
        "Privacy",
    ]


@pytest.mark.parametrize(
    ("sub", "path"),
    [
        ("cyber", ("Malicious Use", "Security threats", "cyber")),
        ("scamns", ("Malicious Use", "Fraud or deceptive action", "scamns")),
        ("fake science", ("Misinformation Harms", "false beliefs", "fake science")),
        ("paypal lending", ("Socioeconomic Harms", "Risky financial practices", "paypal lending")),
        (
            "forge identity",
            ("Human Autonomy & IntegrityHarms", "Violation of personal property", "forge identity"),
        ),
    ],
)
def test_full_path_of_subcategory(tax: Taxonomy, sub: str, path: tuple[str, str, str]) -> None:
    assert tax.path(sub) == path


def test_unknown_names_raise_keyerror_naming_them(tax: Taxonomy) -> None:
    with pytest.raises(KeyError, match="unknown subcategory 'scams'"):
        tax.parent("subcategory", "scams")
    with pytest.raises(KeyError, match="unknown level 'class9'"):
        tax.names("class9")


def test_same_name_at_two_levels_is_told_apart(tax: Taxonomy) -> None:
    # "Defamation" (category) and "defamation" (subcategory) differ only in case.
    assert tax.parent("category", "Defamation") == "Malicious Use"
    assert tax.parent("subcategory", "defamation") == "Defamation"
    assert not tax.contains("category", "defamation")


# -- slugs, display names, configs ----------------------------------------------------------


def test_config_slugs(tax: Taxonomy) -> None:
    assert tax.config_names == CONFIG_NAMES
    assert list(CONFIGS) == CONFIG_NAMES
    assert [d.slug for d in tax.domains] == CONFIG_NAMES[1:]


@pytest.mark.parametrize(
    ("config", "domain"),
    [
        ("default", None),
        ("representation_toxicity", "Representation & ToxicityHarms"),
        ("misinformation", "Misinformation Harms"),
        ("information_safety", "Information & Safety Harms"),
        ("malicious_use", "Malicious Use"),
        ("human_autonomy_integrity", "Human Autonomy & IntegrityHarms"),
        ("socioeconomic", "Socioeconomic Harms"),
    ],
)
def test_domain_of_config(tax: Taxonomy, config: str, domain: str | None) -> None:
    assert tax.domain_of_config(config) == domain
    if domain is not None:
        assert tax.config_of_domain(domain) == config


def test_unknown_config_names_the_valid_ones(tax: Taxonomy) -> None:
    with pytest.raises(KeyError, match="unknown config 'toxicity'; configs: default, "):
        tax.domain_of_config("toxicity")


def test_slugs_are_unique_identifiers(tax: Taxonomy) -> None:
    for level in ("domain", "category", "subcategory"):
        slugs = [tax.node(level, name).slug for name in tax.names(level)]
        assert len(set(slugs)) == len(slugs)
        for slug in slugs:
            assert slug.isidentifier() and slug == slug.lower(), slug


@pytest.mark.parametrize(
    ("level", "name", "slug", "display"),
    [
        (
            "domain",
            "Representation & ToxicityHarms",
            "representation_toxicity",
            "Representation & Toxicity Harms",
        ),
        (
            "domain",
            "Human Autonomy & IntegrityHarms",
            "human_autonomy_integrity",
            "Human Autonomy & Integrity Harms",
        ),
        ("category", "false beliefs", "false_beliefs", "False Beliefs"),
        (
            "subcategory",
            "disablity discrimination",
            "disablity_discrimination",
            "Disability discrimination",
        ),
        ("subcategory", "scamns", "scamns", "Scams"),
        ("subcategory", "drug-related crimes", "drug_related_crimes", "Drug-related crimes"),
    ],
)
def test_slug_and_display_name(tax: Taxonomy, level: str, name: str, slug: str, display: str):
    assert tax.node(level, name).slug == slug
    assert tax.display(level, name) == display


# -- label recovery from image paths ---------------------------------------------------------


@pytest.mark.parametrize(
    ("image_name", "labels"),
    [
        (
            "Representation & ToxicityHarms/Unfair/racial/170.jpg",
            ("Representation & ToxicityHarms", "Unfair", "racial"),
        ),
        (
            "Malicious Use/Security threats/cyber/12.jpg",
            ("Malicious Use", "Security threats", "cyber"),
        ),
        # an outer folder (the zip's top folder, a split) is allowed
        (
            "train/Malicious Use/Security threats/cyber/12.jpg",
            ("Malicious Use", "Security threats", "cyber"),
        ),
        (
            "Malicious Use\\Security threats\\cyber\\12.jpg",
            ("Malicious Use", "Security threats", "cyber"),
        ),
        ("Malicious Use/Security threats/theft/12.jpg", None),  # theft is not a security threat
        ("Malicious Use/Illegal activities/cyber/12.jpg", None),
        ("Security threats/cyber/12.jpg", None),  # too short
        ("uncategorized/12.jpg", None),
        ("12.jpg", None),
        ("", None),
        (None, None),
    ],
)
def test_recover_from_path(tax: Taxonomy, image_name: str | None, labels) -> None:
    assert tax.recover_from_path(image_name) == labels


# -- a broken taxonomy file fails loudly -----------------------------------------------------


def _raw() -> dict:
    return json.loads(TAXONOMY_JSON.read_text(encoding="utf-8"))


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_shipped_file_loads(tmp_path: Path) -> None:
    tax = Taxonomy.from_file(_write(tmp_path, _raw()))
    assert tax.names("subcategory") == SUBCATEGORIES


def test_wrong_count_is_named(tmp_path: Path) -> None:
    raw = _raw()
    raw["subcategories"].pop()  # trade affairs
    with pytest.raises(TaxonomyError) as exc:
        Taxonomy.from_file(_write(tmp_path, raw))
    assert "subcategory: 52 entries, expected 53" in str(exc.value)
    assert str(tmp_path / "taxonomy.json") in str(exc.value)


def test_orphan_parent_is_named(tmp_path: Path) -> None:
    raw = _raw()
    raw["subcategories"][32]["parent"] = "Security threat"  # 'malware', typo in its parent
    with pytest.raises(TaxonomyError) as exc:
        Taxonomy.from_file(_write(tmp_path, raw))
    assert "subcategory 'malware': parent 'Security threat' is not a category" in str(exc.value)


def test_orphan_category_is_named(tmp_path: Path) -> None:
    raw = _raw()
    raw["categories"][5]["parent"] = "Nowhere"  # Privacy
    with pytest.raises(TaxonomyError) as exc:
        Taxonomy.from_file(_write(tmp_path, raw))
    assert "category 'Privacy': parent 'Nowhere' is not a domain" in str(exc.value)


def test_duplicate_name_is_named(tmp_path: Path) -> None:
    raw = _raw()
    dup = copy.deepcopy(raw["subcategories"][0])  # bully
    dup["slug"] = "bully_again"
    raw["subcategories"][-1] = dup  # replaces 'trade affairs': the count stays 53
    with pytest.raises(TaxonomyError) as exc:
        Taxonomy.from_file(_write(tmp_path, raw))
    message = str(exc.value)
    assert "subcategory name 'bully' appears twice" in message
    # 'Trade and compliance' lost its only other child but keeps 'labor issues': no complaint.
    assert "has no subcategory" not in message


def test_duplicate_slug_is_named(tmp_path: Path) -> None:
    raw = _raw()
    raw["domains"][1]["slug"] = "representation_toxicity"
    with pytest.raises(TaxonomyError, match="domain slug 'representation_toxicity' appears twice"):
        Taxonomy.from_file(_write(tmp_path, raw))


def test_childless_parent_is_named(tmp_path: Path) -> None:
    raw = _raw()
    raw["subcategories"][20]["parent"] = "dangerous information"  # Privacy's only child moves
    with pytest.raises(TaxonomyError, match="category 'Privacy' has no subcategory"):
        Taxonomy.from_file(_write(tmp_path, raw))


def test_every_defect_is_listed_not_just_the_first(tmp_path: Path) -> None:
    raw = _raw()
    raw["domains"].pop()
    del raw["categories"][0]["slug"]
    raw["subcategories"][0]["parent"] = "Toxik"
    with pytest.raises(TaxonomyError) as exc:
        Taxonomy.from_file(_write(tmp_path, raw))
    message = str(exc.value)
    for defect in (
        "domain: 5 entries, expected 6",
        "categories[0]: missing slug",
        "subcategory 'bully': parent 'Toxik' is not a category",
    ):
        assert defect in message


def test_missing_level_and_unreadable_file(tmp_path: Path) -> None:
    raw = _raw()
    del raw["categories"]
    with pytest.raises(TaxonomyError, match="categories: missing or not a list"):
        Taxonomy.from_file(_write(tmp_path, raw))
    bad = tmp_path / "broken.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="cannot read taxonomy"):
        Taxonomy.from_file(bad)
    with pytest.raises(TaxonomyError, match="cannot read taxonomy"):
        Taxonomy.from_file(tmp_path / "absent.json")


def test_malformed_entries_are_named_not_crashed_on(tmp_path: Path) -> None:
    raw = _raw()
    raw["categories"][0] = "Toxic"
    raw["subcategories"][1]["parent"] = ["Toxic"]
    raw["subcategories"][2]["name"] = 7
    with pytest.raises(TaxonomyError) as exc:
        Taxonomy.from_file(_write(tmp_path, raw))
    message = str(exc.value)
    for defect in (
        "categories[0]: not an object",
        "subcategories[1]: missing parent",
        "subcategories[2]: missing name",
    ):
        assert defect in message
    with pytest.raises(TaxonomyError, match="the top level must be a JSON object"):
        Taxonomy.from_file(_write(tmp_path, [raw]))  # type: ignore[arg-type]
