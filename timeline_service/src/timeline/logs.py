"""One JSON line per log record on stderr (python-json-logger builds the record, msgspec
encodes it: the standard json module made logging a tenth of a timeline read)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.msgspec import MsgspecFormatter


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        MsgspecFormatter("{asctime}{levelname}{name}{message}", style="{", rename_fields={"levelname": "level"})
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs plain-text handlers of its own; send its records through ours,
    # and silence its access log: the API middleware writes one JSON line per request.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("aiokafka").setLevel("WARNING")
