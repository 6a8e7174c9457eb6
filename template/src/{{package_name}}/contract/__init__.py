"""The data contract: what a row is (``schema.yaml``), reading and validating tables against
it, inferring it for a new file, and getting the project's data in place (``ingest``)."""
