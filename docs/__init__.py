"""spinpim's design documents: the Sphinx sources (``make docs``) and their generators."""
