"""Image builds from users' git repositories: rules, sources, contexts, engines, jobs, logs."""
