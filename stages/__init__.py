"""Thin DVC stage scripts: read params.yaml, call facemask, write the declared outputs."""
