"""Amaranth components of the digital periphery, their configuration, and Verilog export.

Nothing here imports ``golden`` or ``sim``.
"""
