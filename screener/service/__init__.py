"""The HTTP service (FastAPI): routes, auth, schemas, error mapping. No domain logic."""
