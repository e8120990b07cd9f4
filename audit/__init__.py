"""The append-only, hash-chained audit log (spec/audit.md): appending, querying, verifying,
checkpoints and exports."""
