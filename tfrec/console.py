"""Progress lines of jobs: `[tfrec HH:MM:SS] message`, flushed at once.

Example:

```python
from tfrec.console import log
log("trained 4 epoch(s)")
```
"""

import time


def log(msg: str) -> None:
    """Prints `msg` with the time of day, flushed (jobs often run under a log collector)."""
    print(f"[tfrec {time.strftime('%H:%M:%S')}] {msg}", flush=True)
