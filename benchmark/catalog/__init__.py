"""The catalog: manifests, published numbers, profiles, the planner and its cost model: from a table to
resolved run configs with ids. Imports the leaves, store/ and engine/ (its config and registries)."""
