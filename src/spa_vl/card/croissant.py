"""``croissant.json``: Croissant 1.0 metadata (with the responsible-AI fields) of a release.

One FileSet per config (its parquet shards) and one RecordSet per config whose fields read the
parquet columns; ``split`` comes from the shard's file name. Label names are small inline
RecordSets. The JSON is written with sorted keys and no dates, so it is reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path

from spa_vl.about import LICENSE
from spa_vl.names import EVAL_SETS, LEVELS
from spa_vl.taxonomy import load_taxonomy

CROISSANT_NAME = "croissant.json"
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
LICENSE_URLS = {"cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/"}

# The standard Croissant 1.0 @context (as mlcommons publishes it, with the RAI prefix).
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

# Parquet column -> (Croissant data type, description, how to read it)
_COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("sc:Text", "Stable row id."),
    "image": ("sc:ImageObject", "The image (bytes embedded in the parquet file)."),
    "image_name": ("sc:Text", "Original relative image path when known; null otherwise."),
    "question": ("sc:Text", "The question about the image."),
    "chosen": ("sc:Text", "The preferred (safer) response; null on test rows."),
    "rejected": ("sc:Text", "The dispreferred response; null on test rows."),
    "domain": ("sc:Integer", "Harm domain id (record set `domain_names`); -1 unknown."),
    "category": ("sc:Integer", "Harm category id (record set `category_names`); -1 unknown."),
    "subcategory": ("sc:Integer", "Harm subcategory id (`subcategory_names`); -1 unknown."),
    "eval_set": ("sc:Integer", "0 = HarmEval, 1 = HelpEval on test rows; -1 elsewhere."),
}


def _field(config: str, column: str) -> dict:
    dtype, description = _COLUMNS[column]
    source: dict = {"fileSet": {"@id": f"parquet-{config}"}, "extract": {"column": column}}
    if column == "image":
        source["transform"] = {"jsonPath": "bytes"}  # the datasets Image struct {bytes, path}
    return {
        "@type": "cr:Field",
        "@id": f"{config}/{column}",
        "name": column,
        "description": description,
        "dataType": dtype,
        "source": source,
    }


def _split_field(config: str) -> dict:
    return {
        "@type": "cr:Field",
        "@id": f"{config}/split",
        "name": "split",
        "description": "The split, from the shard's file name (train, validation or test).",
        "dataType": "sc:Text",
        "source": {
            "fileSet": {"@id": f"parquet-{config}"},
            "extract": {"fileProperty": "filename"},
            "transform": {"regex": "^(train|validation|test)-.*\\.parquet$"},
        },
    }


def _names_record_set(level: str, names: list[str], displays: list[str]) -> dict:
    rs = f"{level}_names"
    return {
        "@type": "cr:RecordSet",
        "@id": rs,
        "name": rs,
        "description": f"ClassLabel names of `{level}`: the data's exact strings and a display name.",
        "key": {"@id": f"{rs}/id"},
        "field": [
            {"@type": "cr:Field", "@id": f"{rs}/id", "name": "id", "dataType": "sc:Integer"},
            {"@type": "cr:Field", "@id": f"{rs}/name", "name": "name", "dataType": "sc:Text"},
            {"@type": "cr:Field", "@id": f"{rs}/display", "name": "display", "dataType": "sc:Text"},
        ],
        "data": [
            {f"{rs}/id": i, f"{rs}/name": n, f"{rs}/display": d}
            for i, (n, d) in enumerate(zip(names, displays, strict=True))
        ],
    }


def croissant_metadata(ctx: dict) -> dict:
    """The Croissant JSON-LD of a release, from the card context (``content.card_context``)."""
    tax = load_taxonomy()
    repo = ctx["repo_id"]
    url = f"https://huggingface.co/datasets/{repo}" if repo and repo != "ORG/NAME" else ctx["homepage"]
    distribution, record_sets = [], []
    for c in ctx["configs"]:
        name = c["name"]
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": f"parquet-{name}",
                "name": f"parquet-{name}",
                "description": f"Parquet shards of config `{name}` ({c['display']}).",
                "encodingFormat": "application/x-parquet",
                "includes": c["includes"],
            }
        )
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": name,
                "name": name,
                "description": f"Rows of config `{name}` ({c['display']}), every split.",
                "field": [_split_field(name), *(_field(name, col) for col in _COLUMNS)],
            }
        )
    for level in LEVELS:
        names = tax.names(level)
        record_sets.append(_names_record_set(level, names, [tax.display(level, n) for n in names]))
    record_sets.append(_names_record_set("eval_set", list(EVAL_SETS), ["HarmEval", "HelpEval"]))
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": "SPA-VL",
        "description": _description(ctx),
        "url": url,
        "sameAs": ctx["homepage"],
        "license": LICENSE_URLS.get(LICENSE, LICENSE),
        "citeAs": ctx["citation"],
        "version": ctx["version"],
        "keywords": ctx["tags"],
        "isLiveDataset": False,
        "distribution": distribution,
        "recordSet": record_sets,
        **_rai(ctx),
    }


def _description(ctx: dict) -> str:
    text = ctx["description"]
    if ctx["synthetic"]:
        text += (
            " This release was built from the synthetic sample of `spa-vl sample`, "
            "not from the real SPA-VL data."
        )
    return text


def _rai(ctx: dict) -> dict:
    """The Croissant responsible-AI (RAI 1.0) fields, numbers from the build's counts."""
    pub = ctx["published"]
    build = ctx["build"]
    sizes = ctx["sizes"]
    preprocessing = [
        "Every record validated against a JSON Schema and the 6/15/53 taxonomy; failing "
        "records are quarantined with their reasons, never dropped silently.",
        "Train labels recovered from image_name paths class1/class2/class3/<n>.jpg when the "
        f"three names form a taxonomy path ({ctx['labelled']['train']:,} of "
        f"{ctx['rows']['default']['train']:,} train rows in this release).",
        "Questions, responses and image bytes kept as published (no re-encoding).",
    ]
    if build.get("read") is not None:
        preprocessing.append(
            f"{build['read']:,} records read = {build['accepted']:,} accepted + "
            f"{build['quarantined']:,} quarantined."
        )
    return {
        "rai:dataCollection": (
            "Re-release of the SPA-VL data published by its authors "
            f"({pub.UPSTREAM_REPO}, {pub.PAPER}); the paper describes the original collection: "
            "questions about images across the harm taxonomy, responses from "
            f"{pub.RESPONSE_MODELS} vision-language models, a chosen and a rejected response "
            "per training question."
        ),
        "rai:dataCollectionType": ["Secondary Data Analysis"],
        "rai:dataPreprocessingProtocol": preprocessing,
        "rai:dataAnnotationProtocol": (
            "Harm labels are the authors' class1/class2/class3 strings "
            f"({sizes['domain']} domains, {sizes['category']} categories, "
            f"{sizes['subcategory']} subcategories), typos kept; the preference between the two "
            "responses comes from the authors' pipeline, described in the paper."
        ),
        "rai:dataUseCases": [
            "Preference optimisation (DPO, PPO, reward modelling) of vision-language models for "
            "harmlessness.",
            "Safety evaluation with HarmEval and HelpEval (the test split).",
        ],
        "rai:dataLimitations": [
            "English only; uneven coverage across the taxonomy.",
            "Responses are model-written and may be wrong; a chosen response is safer than the "
            "rejected one, not necessarily safe.",
            "The test split has questions only, no reference answers.",
        ]
        + (["This release is the synthetic sample, not the real data."] if ctx["synthetic"] else []),
        "rai:dataBiases": [
            "Responses and preferences inherit the biases of the models and of the pipeline "
            "that produced them.",
            "Harm categories follow the authors' and SALAD-Bench's definitions.",
        ],
        "rai:personalSensitiveInformation": [
            "Harmful and offensive content by design (hate, violence, illegal activity, privacy "
            "and defamation harms); images may show identifiable people.",
        ],
        "rai:dataSocialImpact": (
            "Meant to make vision-language models refuse harmful requests while staying helpful; "
            "misuse (training on rejected responses as targets) could make models more harmful. "
            + (
                f"Access is gated behind a harmful-content acknowledgement ({ctx['gated']} approval)."
                if ctx["gated"]
                else "The repository is not gated: anyone can download it."
            )
        ),
        "rai:dataReleaseMaintenancePlan": (
            "Versioned releases tagged vX.Y.Z with a MANIFEST.json of checksums and a CHANGELOG.md; "
            "load with a pinned revision."
        ),
    }


def write_croissant(folder: str | Path, ctx: dict) -> Path:
    """Write ``croissant.json`` into the release folder."""
    path = Path(folder) / CROISSANT_NAME
    path.write_text(croissant_text(ctx), encoding="utf-8")
    return path


def croissant_text(ctx: dict) -> str:
    return json.dumps(croissant_metadata(ctx), indent=2, sort_keys=True) + "\n"
