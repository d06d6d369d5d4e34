"""twistd plugin: `twistd dashd` builds dashd's service tree (see dashd.tap)."""

from twisted.application.service import ServiceMaker

dashd = ServiceMaker(
    "dashd",
    "dashd.tap",
    "Real-time metrics dashboard daemon (psutil samples over WebSockets)",
    "dashd",
)
