"""The conformance test groups. Collected with ``--pyargs portable_creds_conformance.suite``
while the plugin (``-p portable_creds_conformance.plugin``) is active; each module is one group
(two for isolation), each test carries its stable id in its ``conformance`` marker."""
