"""schemathesis hooks for scripts/fuzz-api (loaded through SCHEMATHESIS_HOOKS)."""

import schemathesis

# The metrics import takes JSON Lines (application/x-ndjson); its schema is a string, sent
# as is, like text/plain.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
