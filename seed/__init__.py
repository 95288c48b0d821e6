"""The one real bulletin (湘潭市, November 2019): per-unit table, headline and text.

Shipped as package data of ``hotline.seed`` and read through :mod:`importlib.resources`,
so a checkout (``seed/`` at the top of the repository) and an installed wheel find the
same files.
"""
