"""Published MLPerf Tiny results: the MLCommons result repositories read into records
(:mod:`.tree`, :mod:`.lines`, :mod:`.systems`), and a tinyharness result ranked among them
(:mod:`.ranking`). ``tinyharness published`` lists and ranks, ``compare`` holds a run against one
published result, ``report --published`` charts a run against the field."""

from .tree import Published, PublishedResult, is_tree, read_published, read_tree  # noqa: F401
