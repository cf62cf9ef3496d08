"""The engine: one run trained into the store (networks, data, losses and distillers, the config and its
schedules, the step, the loop, checkpoints, numerics revisions). Imports the leaves and store/ only;
loading this package imports nothing (torch comes with the modules that need it)."""
