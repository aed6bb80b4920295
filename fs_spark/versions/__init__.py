"""Feature versions: how they are numbered, found, marked and rolled back.

A feature version is one committed write (or a rollback, which writes nothing), recorded as a
row of the `feature_versions` catalog table and mapped to its Delta commit. This package owns
everything that reasons about them: `numbering` (the next number and the retry of a write),
`series` (which writes' rows a version holds), `resolver` (a number, ID or point in time to a
version), `status` (quarantine and release) and `rollback`.
"""
