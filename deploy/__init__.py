"""The multi-process topology: deploy/cluster.py, a module per service, Pushpin's templates."""
