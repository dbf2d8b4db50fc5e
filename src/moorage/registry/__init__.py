"""The /v2 HTTP API of the OCI Distribution Specification."""
