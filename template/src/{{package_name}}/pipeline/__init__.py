"""The DVC stages, in order: prepare -> features -> train -> evaluate (-> model_card), and
``tune``, the hyperparameter search over them. ``features.py`` and ``train.py`` are yours to
edit: the features, and the models to choose from."""
