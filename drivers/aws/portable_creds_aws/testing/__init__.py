"""Local stand-ins the test suite starts itself: Ceph RGW, an OIDC issuer, a moto server.

They live in the package (not under ``tests/``) so the conformance harness, the benchmarks and
users reproducing a result can start exactly the same endpoints.
"""
