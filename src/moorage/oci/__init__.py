"""Pure OCI rules: digests, references, media types, manifests and byte ranges; no I/O."""
