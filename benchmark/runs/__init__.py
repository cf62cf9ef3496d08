"""Running the plan: the job queue and its workers, leases, retry and fusing, session notes, stale runs,
pre-flight, measured throughput, store check and migrate. Imports the leaves, store/, engine/, catalog/."""
