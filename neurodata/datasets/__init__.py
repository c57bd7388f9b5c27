"""Datasets: published resources, their download, verification and extraction, and the prepared cache."""
