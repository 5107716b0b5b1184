"""What development, the demo, the tests and the benchmarks need and production never loads:
the local services (`devservices`: PostgreSQL, SeaweedFS and the Celery broker's Redis on
loopback ports) and the sample archive (`sample`: a small, realistic, deterministic input
bucket on local disk)."""
