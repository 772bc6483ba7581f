"""Filesystem safety: folders confined under a root, and writes published complete or not at all."""
