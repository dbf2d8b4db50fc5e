"""The registry's content services: uploads, blobs, manifests, tags and listings."""
