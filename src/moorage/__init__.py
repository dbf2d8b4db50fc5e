"""moorage: a self-hosted private container image registry."""
