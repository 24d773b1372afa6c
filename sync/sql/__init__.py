"""The archive database, by concern: the only SQL besides the migrations.

`edge` is the thin Postgres edge (the pool, the one retry loop, which driver errors are
transient); each other module owns the statements of one concern over it, and reaches the
database only through it: `pages` (a page's rows, in one transaction with its checkpoint),
`scans`, `deletions`, `hydration`, `media`, `accounts`, `status`, `views`. `sync.store.Store`
is composed of them for the callers. Besides the archive: `server` (databases and roles, for
sync/database.py) and `samples` (the example queries `demo` shows)."""
