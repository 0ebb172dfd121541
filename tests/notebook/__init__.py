"""Tests of the notebook face: magics, widgets, charts."""
