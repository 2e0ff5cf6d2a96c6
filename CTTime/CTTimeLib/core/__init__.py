"""Primitives every other folder uses: errors, resources, the lesion vocabulary and CTTime.* tags, image and
mask geometry, safe file writing, text safety of names and table cells, the score colour map, time points."""
