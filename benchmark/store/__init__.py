"""The store on disk (layout, atomic and fenced writes, leases, stored plans): where every run lives.
Imports only the flat leaves (errors, schema, spec); everything above reads and writes through it."""
