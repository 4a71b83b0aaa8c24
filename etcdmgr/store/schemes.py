"""The URL schemes a store or discovery location may have (a module of its own so that file://
users never import the object-store code)."""

SCHEMES = {"s3": "s3", "gs": "gcs", "azureblob": "azure", "az": "azure"}  # scheme -> kind
SUPPORTED = "file:///path, s3://bucket/prefix, gs://bucket/prefix or azureblob://container/prefix"
