"""Promotion: a model version reaches an environment through a pull request, behind a gate.

Assigning a GTO stage (``make promote-model STAGE=staging`` pushes the tag
``NAME#staging#N``) starts the Promote workflow, which runs the commands here:

- ``gate`` (gate.py): the candidate's metrics (``metrics/metrics.json`` at its tag) against
  the champion's (the version the stage held before, read at its own tag), with the
  thresholds of ``params.yaml``'s ``promotion`` section; a Markdown table for the pull
  request's body and the job summary;
- ``image-digest`` (images.py): the digest of the image CD pushed for the tag's commit;
- ``set-image`` (overlay.py): that digest pinned in ``deploy/overlays/<env>/kustomization.yaml``
  (the ``model-service`` image), which the pull request proposes. Merging it deploys (Argo CD
  syncs the overlay); reverting it rolls back.
"""
