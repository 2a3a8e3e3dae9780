"""The multi-process topology: deploy/cluster.py and the Pushpin templates it renders."""
