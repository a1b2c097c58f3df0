"""No usage analytics from OpenVINO or NNCF.

``import openvino`` (its converter package initialises on import) and every conversion send events
to Google Analytics unless the user opted out in ``openvino_telemetry``'s consent file, each from a
process forked off a worker thread. A batch job must not phone home, and on an offline machine such
a fork, taken while another thread held the dynamic loader's lock, left a child stuck in
``getaddrinfo`` that the tag process then waited for at exit. So, before anything here imports
OpenVINO, ``openvino_telemetry`` is made unimportable for this process: OpenVINO and NNCF then use
the stubs they ship for an install without it.
"""

from __future__ import annotations

import sys


def no_telemetry() -> None:
    """Block ``openvino_telemetry`` in this process (a ``None`` in ``sys.modules`` makes its import
    raise ``ImportError``); too late if it was imported already, so ``actionrec.engines`` does this
    on import. Idempotent."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
