"""How release parquet is written (``ParquetSettings``) and sizes as ``datasets`` parses them.

The settings are recorded in MANIFEST.json (``parquet``); bench/README.md gives the
measurements behind each choice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

DEFAULT_MAX_SHARD_SIZE = "500MB"  # datasets' MAX_SHARD_SIZE: 500,000,000 bytes
# datasets 5's content-defined chunking (config.DEFAULT_CDC_OPTIONS), fixed here so that the
# bytes written do not depend on the datasets version installed.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
IMAGE_LEAVES = ("image.bytes", "image.path")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")
_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50,
}  # fmt: skip


def parse_size(text: str | int) -> int:
    """A size as ``datasets`` parses one (``convert_file_size_to_int``): ``500MB`` is
    500,000,000 bytes, ``1GiB`` 2**30, a trailing lower-case ``b`` means bits (``8Mb`` is
    1,000,000 bytes); a plain number is bytes. Decimals are accepted (``1.5GB``).
    ValueError names the text when it is none of these."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"size {text}: must be more than 0 bytes")
        return text
    m = _SIZE.match(str(text))
    unit = m[2] if m else ""
    factor = _UNITS.get(unit.upper()) if m else None
    if factor is None:
        raise ValueError(
            f"size {text!r}: not a number of bytes, nor a number with a unit "
            "(KB, MB, GB, TB; KiB, MiB, GiB, TiB)"
        )
    bits = len(unit) == 2 and unit.endswith("b")  # datasets: "Mb" is megabits
    size = int(float(m[1]) * factor) // (8 if bits else 1)
    if size <= 0:
        raise ValueError(f"size {text!r}: must be more than 0 bytes")
    return size


@dataclass(frozen=True)
class ParquetSettings:
    """How release parquet is written, recorded in MANIFEST.json (``parquet``).

    As ``datasets`` 5 writes for the Hub (``ParquetWriter`` / ``Dataset.to_parquet``): the
    embedded image bytes uncompressed and PLAIN-encoded (JPEG and PNG bytes do not compress, and
    left as they are, Xet finds them again whatever moves around them), the other columns snappy
    with dictionaries; content-defined chunking of pages; a page index; row groups of about
    ``row_group_bytes`` of Arrow data (datasets' ``MAX_ROW_GROUP_SIZE``, 100MB, its sizing of
    image data). See bench/README.md for the measurements behind each choice.

    With content-defined chunking, a page ends where a chunk ends (``max_chunk_size`` bounds
    it) and nowhere else: the page size limit is set out of the way (``cdc_page_size``). The
    writer checks that limit between the pieces of a column it is given, so at datasets'
    1 MiB a page could end where one source batch ended; without it, the same values give the
    same pages however they were batched, and the image column is written as it was gathered,
    without first being copied into one piece (``pages_by_content``)."""

    max_shard_size: int = parse_size(DEFAULT_MAX_SHARD_SIZE)
    row_group_bytes: int = parse_size("100MB")
    compression: str = "snappy"
    image_compression: str = "none"
    content_defined_chunking: dict | None = field(default_factory=lambda: dict(CDC_OPTIONS))
    write_page_index: bool = True
    cdc_page_size: int = 2**30  # data_page_size with content-defined chunking (see above)

    @property
    def pages_by_content(self) -> bool:
        """Whether pages end only where content-defined chunks end: then the bytes written do
        not depend on how a column's values are split into pieces (byte arrays without a
        dictionary, as the image column is written)."""
        return self.content_defined_chunking is not None

    @property
    def piecewise_columns(self) -> frozenset[str]:
        """The columns a writer may hand over in the pieces they were gathered in, because the
        bytes written are the same as for one array: the image column, when pages end by
        content alone (``pages_by_content``); else none."""
        if not self.pages_by_content:
            return frozenset()
        return frozenset(leaf.split(".")[0] for leaf in IMAGE_LEAVES)

    def writer_options(self, schema: pa.Schema) -> dict:
        """``pq.ParquetWriter`` options; parquet names struct fields' columns ``image.bytes``."""
        leaves = [f"{c.name}.{sub.name}" for c in schema if pa.types.is_struct(c.type) for sub in c.type] + [
            c.name for c in schema if not pa.types.is_struct(c.type)
        ]
        image = [leaf for leaf in leaves if leaf in IMAGE_LEAVES]
        options: dict = {
            "compression": {
                leaf: (self.image_compression if leaf in image else self.compression) for leaf in leaves
            },
            "use_dictionary": [leaf for leaf in leaves if leaf not in image],
            "column_encoding": dict.fromkeys(image, "PLAIN"),
            "write_page_index": self.write_page_index,
        }
        if self.content_defined_chunking is not None:
            options["use_content_defined_chunking"] = dict(self.content_defined_chunking)
            options["data_page_size"] = self.cdc_page_size
        return options

    def to_dict(self) -> dict:
        return {
            "max_shard_size": self.max_shard_size,
            "row_group_bytes": self.row_group_bytes,
            "compression": self.compression,
            "image_compression": self.image_compression,
            "content_defined_chunking": self.content_defined_chunking,
            "write_page_index": self.write_page_index,
            "data_page_size": self.cdc_page_size if self.pages_by_content else None,
            "pyarrow": pa.__version__,
        }
