"""The built-in demo: a synthetic teacher corpus with planted defects (corpus/), run through the whole loop."""
