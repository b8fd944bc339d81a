"""Result files: the only contract between the engine and the site.

``store`` holds the schema, atomic writes, reading and validation; ``records`` what a
stage writes (where, under which fingerprint, with which provenance); ``pack`` the result
archives. Imports only ``bench.core``, and never torch: the site reads results through here.
"""
