"""Digit Lens core: preprocessing, inference and rendering, free of any serving framework."""
