"""schemathesis hooks for callflowd: media uploads are raw audio, sent as opaque bytes."""

import schemathesis

schemathesis.serializer.alias(
    ["audio/wav", "audio/x-wav", "audio/mpeg", "audio/mp3"], "application/octet-stream"
)
