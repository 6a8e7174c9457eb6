"""Serving the model: the BentoML service (``service``), its settings, request model and
middleware, the batch CLI (``batch``) and the prediction log both write to."""
