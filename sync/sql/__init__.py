"""The archive database, by concern: the only SQL besides the migrations.

`edge` is the thin Postgres edge (the pool, the one retry loop, which driver errors are
transient); each other module owns the statements of one concern over it: `pages` (a page's
rows, in one transaction with its checkpoint), `scans`, `deletions`, `leases`, `hydration`,
`accounts`, `status`. `sync.store.Store` puts them together for the callers."""
