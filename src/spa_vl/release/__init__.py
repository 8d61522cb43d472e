"""Release folders: writing, manifest, changelog, verification, diff and the Hub push."""
