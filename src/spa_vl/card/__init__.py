"""The dataset card of a release: ``render.render_card`` (README.md, plots, croissant.json) and
``check.check_release`` (the offline checks). Submodules are imported on use."""
