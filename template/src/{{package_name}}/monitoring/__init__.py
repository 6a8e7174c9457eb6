"""Monitoring: drift of the traffic served (or of a batch) against the training data, and
the model's quality where labels came back. ``python -m <package>.monitoring`` runs it."""
