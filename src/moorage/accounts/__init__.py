"""Users, activation, namespaces, access tokens and login rate limits: services, no HTTP."""
