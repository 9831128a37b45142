"""Midjourney backends: each in its own package, all behind the `Backend` protocol of `base`."""
